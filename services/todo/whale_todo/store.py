"""The to-do stage's items on disk: a :class:`LocalStore` that caches the compacted ``whale.todos``.

Layout: ``i`` + item id -> the item (JSON), ``o`` + merge key -> the id of the open item with that
key, ``l`` + merge key -> the id of the latest item with that key (open or not: a re-firing alert
reopens it), ``x`` + last change (epoch seconds, 8 bytes) + item id -> empty for every closed item
(the expiry index: the retention sweep reads only its expired range) and ``c`` + correlation id ->
the incident (key and title) an alert episode belongs to (so a failed remediation of that episode
joins its to-do; dropped when the episode resolves; not rebuilt from ``whale.todos``). The stage's
changes are staged in a batch and committed with the ``whale.todos`` offsets they were written at,
or dropped when a write fails. At start-up :class:`TodoLoader` reads only the records after the
offsets the store applied (all of them for a new, lost or foreign store).

The ``o`` and ``x`` entries are hints checked against the item when read (:func:`open_item`,
:func:`expired`): a rebuild writes them blind, without reading what the store holds, so an entry
may name an item that has since closed, reopened or changed; such an entry is ignored (and the
sweep deletes stale ``x`` entries it meets).
"""

from __future__ import annotations

import json
import re
import struct
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, cast

import orjson

from whale import topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.compacted import CompactedFollower
from whale.errors import BindingError
from whale.producer import Delivered
from whale.settings import WhaleSettings
from whale.store import Batch, LocalStore, StoreSettings, contiguous, open_store
from whale.todos import OPEN_STATES

ITEM = b"i"
OPEN = b"o"
LAST = b"l"
EPISODE = b"c"
EXPIRY = b"x"
_STAMP = struct.Struct(">Q")
# The first fields of an item as the stage writes it (json.dumps of new_item's order), read without
# decoding the rest; an escape or another layout does not match and the item is decoded instead.
_HEAD = re.compile(rb'\{"id": "([^"\\]*)", "key": "([^"\\]*)", "status": "([^"\\]*)"')


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
    batch: Batch,
    item: Mapping[str, Any],
    open_states: tuple[str, ...],
    raw: bytes | None = None,
    *,
    blind: bool = False,
) -> None:
    """Stage ``item`` (``raw``: its JSON as read, stored as is) and the index entries it implies.
    ``blind`` (a rebuild): never read the store, so a closed item leaves its key's open entry as it
    is (a hint :func:`open_item` checks)."""
    item_id, key = str(item["id"]).encode(), str(item["key"]).encode()
    batch.put(ITEM + item_id, raw if raw is not None else json.dumps(dict(item)).encode())
    batch.put(LAST + key, item_id)
    if item.get("status") in open_states:
        batch.put(OPEN + key, item_id)
        return
    if not blind and batch.get(OPEN + key) == item_id:
        batch.delete(OPEN + key)
    batch.put(expiry_key(changed_at(item) or int(time.time()), item_id), b"")


def drop_item(batch: Batch, item_id: str) -> None:
    """Stage the deletion of an item (a tombstone) and of its key's entries that name it (its
    expiry entries are stale from then on: the sweep deletes them)."""
    raw = batch.get(ITEM + item_id.encode())
    if raw is not None:
        key = str(json.loads(raw).get("key", "")).encode()
        for index in (OPEN, LAST):
            if batch.get(index + key) == item_id.encode():
                batch.delete(index + key)
    batch.delete(ITEM + item_id.encode())


def changed_at(item: Mapping[str, Any]) -> int | None:
    """The item's last change (``updated_at``, else ``created_at``) in epoch seconds (None: unknown)."""
    for field in ("updated_at", "created_at"):
        try:
            return max(int(datetime.fromisoformat(str(item[field])).timestamp()), 0)
        except (KeyError, ValueError, OverflowError):
            continue
    return None


def expiry_key(stamp: int, item_id: bytes) -> bytes:
    return EXPIRY + _STAMP.pack(stamp) + item_id


def expired(
    store: LocalStore, cutoff: float, limit: int, open_states: tuple[str, ...] = OPEN_STATES
) -> tuple[list[tuple[bytes, str]], list[bytes]]:
    """The first ``limit`` expiry entries older than ``cutoff`` (epoch seconds), as committed, split
    into those (with the item id) of closed items last changed before ``cutoff``, one per item, and
    the stale ones (the item is gone, open again, or changed since: a closed item's every change
    writes a newer entry). Reads only the expired range of the index, ``limit`` entries at most."""
    ids: list[tuple[bytes, str]] = []
    stale: list[bytes] = []
    named: set[bytes] = set()
    end = EXPIRY + _STAMP.pack(max(int(cutoff), 0))
    for entry, _ in store.items(EXPIRY, end=end):
        if len(ids) + len(stale) >= limit:
            break
        item_id = entry[9:]
        item = _decoded(store.get(ITEM + item_id))
        if not isinstance(item, dict) or item.get("status") in open_states:
            stale.append(entry)
            continue
        changed = changed_at(item)
        if (changed is not None and changed >= cutoff) or item_id in named:
            stale.append(entry)  # changed since, or an earlier closing of an item already named
        else:
            named.add(item_id)
            ids.append((entry, item_id.decode()))
    return ids, stale


def _changed(raw: bytes) -> int:
    """The last change of a stored item (now when it cannot tell)."""
    item = _decoded(raw)
    return (changed_at(item) if isinstance(item, dict) else None) or int(time.time())


def _decoded(raw: bytes | None) -> Any:
    try:
        return None if raw is None else json.loads(raw)
    except ValueError:
        return None


def open_item(batch: Batch, key: str, open_states: tuple[str, ...] = OPEN_STATES) -> dict[str, Any] | None:
    """The open item of merge key ``key``: the open entry's item, if it is still open with that key."""
    found = batch.get(OPEN + key.encode())
    raw = None if found is None else batch.get(ITEM + found)
    if raw is None:
        return None
    item = json.loads(raw)
    if not isinstance(item, dict) or item.get("status") not in open_states or item.get("key") != key:
        return None
    return item


def open_id(batch: Batch, key: str) -> str | None:
    found = open_item(batch, key)
    return None if found is None else str(found["id"])


def open_ids(store: LocalStore) -> list[str]:
    """The ids the open entries name (as committed: the escalation sweep reads between batches;
    hints: the caller checks each item is still open)."""
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
    """Brings the local store up to date with ``whale.todos`` (records after its applied offsets).

    While catching up, each fetched batch is folded by item id first (an item's last record wins, a
    tombstone deletes), so only the survivors are decoded, and written blind (:func:`put_item`
    ``blind``) with the batch's offsets in one WriteBatch. A record whose value is an item (a JSON
    object whose ``id`` is the record's key: the stage's own ``whale.todo.saved`` records) is stored
    as written, without reading its CloudEvent headers; anything else is read as a CloudEvent."""

    def __init__(self, settings: WhaleSettings, state: StoreSettings, open_states: tuple[str, ...]) -> None:
        super().__init__(settings, topics.TODOS)
        self._state = state
        self._open_states = open_states
        self.store: LocalStore | None = None
        self._batch: Batch | None = None
        self._open_bytes = {state.encode() for state in open_states}
        self._folded: dict[bytes, Any] = {}
        self.read = 0

    def _local(self, cluster: str | None) -> LocalStore | None:
        identity = {"stage": "todo", "topic": self._topic, "cluster": cluster}
        self.store = open_store("todo-book", identity, self._state)
        return self.store

    def _begin(self) -> None:
        assert self.store is not None
        if self.catching_up and self.store.rebuilt:
            self.store.defer_compaction()  # a rebuild: one compaction once caught up (LocalStore.compact)
        self._batch = self.store.batch()
        self._folded = {}

    def _take(self, records: list[Any]) -> None:
        keys: list[bytes] = [m.key() for m in records] if self.catching_up else []
        if not keys or None in keys:  # live, or a record without a key
            super()._take(records)
            return
        last = dict(zip(keys, range(len(keys)), strict=True))  # each item's last record (batch index)
        if len(last) == len(keys) and not self._folded:  # one record per item: in fetch order
            self._folded = dict(zip(keys, records, strict=True))
        else:
            self._folded.update((keys[i], records[i]) for i in sorted(last.values()))  # in that order
        self.records_read += len(keys)
        self.read += len(keys)

    def _applied(self, offsets: dict[int, int]) -> None:
        assert self.store is not None and self._batch is not None
        folded, self._folded = self._folded, {}
        if not self._blind(folded):
            self._slowly(folded)
        self.store.commit(self._batch, offsets, wal=not self.catching_up)

    def _blind(self, folded: dict[bytes, Any]) -> bool:
        """Put a folded batch whose records are all items in the stage's layout (:data:`_HEAD`)
        straight into the batch's ``raw`` WriteBatch: the item as written, its key's latest entry,
        its open or expiry entry. False (nothing put) if any record is not."""
        assert self._batch is not None
        msgs = list(folded.values())
        values = [m.value() for m in msgs]
        if None in values:
            return False
        found = [_HEAD.match(v) for v in values]
        if None in found:
            return False
        heads = cast(list[re.Match[bytes]], found)
        raw, open_states = self._batch.raw, self._open_bytes
        put = raw.put
        for item_id, head, msg in zip(folded, heads, msgs, strict=True):
            found_id, key, status = head.groups()
            if found_id != item_id:
                raw.clear()
                return False
            put(ITEM + item_id, head.string)
            put(LAST + key, item_id)
            if status in open_states:
                put(OPEN + key, item_id)
            else:  # closed: the expiry entry at the record's time (written right after the change)
                kind, ms = msg.timestamp()
                stamp = ms // 1000 if kind and ms > 0 else _changed(head.string)
                put(expiry_key(stamp, item_id), b"")
        return True

    def _slowly(self, folded: dict[bytes, Any]) -> None:
        """Stage a folded batch record by record (tombstones, records not in the stage's layout)."""
        assert self._batch is not None
        staged, open_states = self._batch.staged, self._open_bytes
        for item_id, msg in folded.items():
            value = msg.value()
            head = _head(item_id, value)
            if head is None:
                self._apply(item_id, msg, blind=True)
                continue
            key, status = head  # the item is stored as written; its key's entries written blind
            staged[ITEM + item_id] = value
            staged[LAST + key] = item_id
            if status in open_states:
                staged[OPEN + key] = item_id
            else:  # closed: the expiry entry at the record's time (written right after the change)
                kind, ms = msg.timestamp()
                stamp = ms // 1000 if kind and ms > 0 else _changed(value)
                staged[expiry_key(stamp, item_id)] = b""

    def _record(self, key: bytes, msg: Any) -> None:
        self.read += 1
        if self.catching_up:
            self._folded.pop(key, None)  # the item's last record goes last (the key indexes follow it)
            self._folded[key] = msg
        else:
            self._apply(key, msg, blind=False)

    def _apply(self, key: bytes, msg: Any, *, blind: bool) -> None:
        assert self._batch is not None
        value = msg.value()
        if value is None and not msg.headers():
            drop_item(self._batch, key.decode("utf-8", "replace"))
            return
        item = _item(key, value)
        if item is not None:
            put_item(self._batch, item, self._open_states, value, blind=blind)
            return
        try:
            event = from_kafka(KafkaMessage(key, value, headers_from(msg.headers())))
        except BindingError:
            return
        data = event.data
        if isinstance(data, Mapping) and "id" in data and "key" in data:
            put_item(self._batch, data, self._open_states, blind=blind)


def _head(item_id: bytes, value: bytes | None) -> tuple[bytes, bytes] | None:
    """The merge key and status of the item a record's value is (see :func:`_item`), read from the
    value's head when it has the stage's layout, else decoded; None: not an item."""
    if value is None:
        return None
    found = _HEAD.match(value)
    if found is not None:
        return (found[2], found[3]) if found[1] == item_id else None
    item = _item(item_id, value)
    if item is None or not isinstance(item.get("status"), str):
        return None
    return str(item["key"]).encode(), item["status"].encode()


def _item(key: bytes, value: bytes | None) -> dict[str, Any] | None:
    """The item a record's value is, stored as written: a JSON object whose ``id`` is the record's
    key, with a ``key`` (a structured-mode CloudEvent has its own id, and no ``key``)."""
    if not value or value[:1] != b"{":
        return None
    try:
        item = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(item, dict) or "key" not in item or "specversion" in item:
        return None
    return item if str(item.get("id")).encode() == key else None
