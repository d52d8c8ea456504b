"""The to-do stage's items on disk: a :class:`LocalStore` that caches the compacted ``whale.todos``.

Layout: ``i`` + item id -> the item (JSON), ``o`` + merge key -> the id of the open item with that
key, ``l`` + merge key -> the id of the latest item with that key (open or not: a re-firing alert
reopens it) and ``c`` + correlation id -> the incident (key and title) an alert episode belongs to
(so a failed remediation of that episode joins its to-do; dropped when the episode resolves; not
rebuilt from ``whale.todos``). The stage's changes are staged in a batch and committed with the ``whale.todos`` offsets they
were written at, or dropped when a write fails. At start-up :class:`TodoLoader` reads only the
records after the offsets the store applied (all of them for a new, lost or foreign store).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from whale import topics
from whale.binding import CONTENT_TYPE, KafkaMessage, from_kafka, headers_from
from whale.compacted import CompactedFollower
from whale.errors import BindingError
from whale.producer import Delivered
from whale.settings import WhaleSettings
from whale.store import Batch, LocalStore, StoreSettings, contiguous, open_store

ITEM = b"i"
OPEN = b"o"
LAST = b"l"
EPISODE = b"c"
SAVED_TYPE = b"whale.todo.saved"  # todos.SAVED: the type of the stage's own records
JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


class StoredItems(Mapping[str, dict[str, Any]]):
    """item id -> item, read through the book's pending batch (a read-only mapping)."""

    def __init__(self, store: LocalStore, batch: Batch) -> None:
        self._store = store
        self.batch = batch

    def __getitem__(self, item_id: str) -> dict[str, Any]:
        raw = self.batch.get(ITEM + item_id.encode())
        if raw is None:
            raise KeyError(item_id)
        found: dict[str, Any] = json.loads(raw)
        return found

    def _ids(self) -> Iterator[str]:
        staged = {k for k in self.batch.staged if k.startswith(ITEM)}
        for key, _ in self._store.items(ITEM):
            if key not in staged:
                yield key[1:].decode()
        for key in staged:
            if self.batch.get(key) is not None:
                yield key[1:].decode()

    def __iter__(self) -> Iterator[str]:
        return self._ids()

    def __len__(self) -> int:
        return sum(1 for _ in self._ids())


def put_item(
    batch: Batch, item: Mapping[str, Any], open_states: tuple[str, ...], raw: bytes | None = None
) -> None:
    """Stage ``item`` (``raw``: its JSON as read, stored as is) and the open-key entry it implies."""
    item_id, key = str(item["id"]), str(item["key"]).encode()
    batch.put(ITEM + item_id.encode(), raw if raw is not None else json.dumps(dict(item)).encode())
    batch.put(LAST + key, item_id.encode())
    if item.get("status") in open_states:
        batch.put(OPEN + key, item_id.encode())
    elif batch.get(OPEN + key) == item_id.encode():
        batch.delete(OPEN + key)


def drop_item(batch: Batch, item_id: str) -> None:
    """Stage the deletion of an item (a tombstone) and of its open-key entry."""
    raw = batch.get(ITEM + item_id.encode())
    if raw is not None:
        key = str(json.loads(raw).get("key", "")).encode()
        for index in (OPEN, LAST):
            if batch.get(index + key) == item_id.encode():
                batch.delete(index + key)
    batch.delete(ITEM + item_id.encode())


def open_id(batch: Batch, key: str) -> str | None:
    found = batch.get(OPEN + key.encode())
    return None if found is None else found.decode()


def open_ids(store: LocalStore) -> list[str]:
    """The ids of the open items (as committed: the escalation sweep reads between batches)."""
    return [value.decode() for _, value in store.items(OPEN)]


def last_id(batch: Batch, key: str) -> str | None:
    found = batch.get(LAST + key.encode())
    return None if found is None else found.decode()


def episode_incident(batch: Batch, correlation: str) -> dict[str, Any] | None:
    """The incident (``key``, ``title``) an alert episode was seen in, or None."""
    found = batch.get(EPISODE + correlation.encode())
    return None if found is None else dict(json.loads(found))


def remember_episode(batch: Batch, correlation: str, incident: Mapping[str, Any] | None) -> None:
    """Stage (or, with None, drop) the incident of an alert episode."""
    if incident is None:
        if batch.get(EPISODE + correlation.encode()) is not None:
            batch.delete(EPISODE + correlation.encode())
    else:
        batch.put(EPISODE + correlation.encode(), json.dumps(dict(incident)).encode())


def applied(store: LocalStore, delivered: list[Any]) -> dict[int, int]:
    """The next ``whale.todos`` offsets after our own acknowledged writes (see :func:`contiguous`)."""
    written: dict[int, list[int]] = {}
    for d in delivered:
        if isinstance(d, Delivered) and d.topic == topics.TODOS:
            written.setdefault(d.partition, []).append(d.offset)
    return {p: contiguous(store.offset(p), offsets) for p, offsets in written.items()}


class TodoLoader(CompactedFollower):
    """Brings the local store up to date with ``whale.todos`` (records after its applied offsets)."""

    def __init__(self, settings: WhaleSettings, state: StoreSettings, open_states: tuple[str, ...]) -> None:
        super().__init__(settings, topics.TODOS)
        self._state = state
        self._open_states = open_states
        self.store: LocalStore | None = None
        self._batch: Batch | None = None
        self.read = 0

    def _local(self, cluster: str | None) -> LocalStore | None:
        identity = {"stage": "todo", "topic": self._topic, "cluster": cluster}
        self.store = open_store("todo-book", identity, self._state)
        return self.store

    def _begin(self) -> None:
        assert self.store is not None
        self._batch = self.store.batch()

    def _applied(self, offsets: dict[int, int]) -> None:
        assert self.store is not None and self._batch is not None
        self.store.commit(self._batch, offsets, wal=not self.catching_up)

    def _record(self, key: bytes, msg: Any) -> None:
        assert self._batch is not None
        self.read += 1
        if msg.value() is None and not msg.headers():
            drop_item(self._batch, key.decode("utf-8", "replace"))
            return
        if self.catching_up and _saved_json(msg.headers()):
            # catching up on the stage's own records: the item JSON is stored as written, without
            # validating the whole CloudEvent again or re-encoding the item
            try:
                item = json.loads(msg.value())
            except ValueError:
                return
            if isinstance(item, dict) and "id" in item and "key" in item:
                put_item(self._batch, item, self._open_states, msg.value())
            return
        try:
            event = from_kafka(KafkaMessage(key, msg.value(), headers_from(msg.headers())))
        except BindingError:
            return
        item = event.data
        if isinstance(item, Mapping) and "id" in item and "key" in item:
            put_item(self._batch, item, self._open_states)


def _saved_json(headers: list[tuple[str, bytes]] | None) -> bool:
    """A binary-mode record of the stage's own type with JSON data (its value is the item)."""
    found = dict(headers or ())
    return found.get("ce_type") == SAVED_TYPE and found.get(CONTENT_TYPE) in JSON_TYPES
