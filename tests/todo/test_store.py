"""The to-do book's store: the loader folds and stores its own records' item JSON as read while
catching up; the open entry is a hint checked against the item; closed items are in the expiry index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from whale_todo.stage import record
from whale_todo.store import (
    EXPIRY,
    TodoLoader,
    drop_item,
    expired,
    expiry_key,
    last_id,
    open_id,
    put_item,
)

from whale.binding import KafkaMessage, to_binary
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale.todos import OPEN_STATES

T0 = 1_800_000_000  # epoch seconds
CLOSED_AT = "2027-01-15T08:00:00Z"  # = T0


class Msg:
    def __init__(self, message: KafkaMessage, at_ms: int = T0 * 1000) -> None:
        self._m = message
        self._at = at_ms

    def value(self) -> bytes | None:
        return self._m.value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return list(self._m.headers) or None

    def timestamp(self) -> tuple[int, int]:
        return (1, self._at) if self._at > 0 else (0, -1)


def saved(item: dict[str, Any], at_ms: int = T0 * 1000) -> Msg:
    return Msg(to_binary(record(item)), at_ms)


def tombstone() -> Msg:
    return Msg(KafkaMessage(b"", None, ()))


def loader(tmp_path: Path, catching_up: bool) -> TodoLoader:
    state = StoreSettings(dir=tmp_path, cache_mb=1, write_buffer_mb=1)
    book = TodoLoader(WhaleSettings(kafka_bootstrap="127.0.0.1:1"), state, OPEN_STATES)
    book.store = LocalStore(tmp_path / "todo", {"stage": "todo"}, state)
    book.catching_up = catching_up
    book._begin()
    return book


def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "s", {"stage": "todo"}, StoreSettings(dir=tmp_path, cache_mb=1))


OPENED: dict[str, Any] = {"id": "i1", "key": "printer.jammed|floor-3", "status": "open", "count": 1}


def test_items_read_while_catching_up_are_stored_as_written_and_indexed_while_open(tmp_path: Path) -> None:
    for catching_up in (True, False):
        book = loader(tmp_path / str(catching_up), catching_up)
        assert book.store is not None and book._batch is not None
        opened = saved(OPENED)
        book._record(b"i1", opened)
        book._applied({0: 1})
        assert open_id(book.store.batch(), "printer.jammed|floor-3") == "i1"
        book._begin()
        book._record(b"i1", saved({**OPENED, "status": "resolved"}))
        book._applied({0: 2})
        assert open_id(book.store.batch(), "printer.jammed|floor-3") is None
        assert last_id(book.store.batch(), "printer.jammed|floor-3") == "i1"
        assert book.store.get(b"ii1") is not None and book.read == 2
        book._begin()
        book._record(b"i1", opened)
        book._applied({0: 3})
        assert book.store.get(b"ii1") == opened.value()  # the value as read, not re-encoded
        book.store.close()


def test_a_caught_up_batch_keeps_each_items_last_record_and_a_tombstone_deletes(tmp_path: Path) -> None:
    book = loader(tmp_path, catching_up=True)
    assert book.store is not None
    other = {"id": "i2", "key": "disk.full|db-1", "status": "open", "count": 1}
    book._record(b"i1", saved(OPENED))
    book._record(b"i2", saved(other))
    book._record(b"i1", saved({**OPENED, "count": 2}))
    book._record(b"i2", tombstone())
    book._applied({0: 4})
    assert json.loads(book.store.get(b"ii1") or b"")["count"] == 2
    assert book.store.get(b"ii2") is None
    assert open_id(book.store.batch(), "disk.full|db-1") is None
    assert book.store.offsets() == {0: 4}
    book.store.close()


class Fetched(Msg):
    """A fetched record (key, partition and offset too), as a whole batch is taken."""

    def __init__(self, key: bytes, msg: Msg, offset: int, partition: int = 0) -> None:
        super().__init__(msg._m, msg._at)
        self._key, self._offset, self._partition = key, offset, partition

    def key(self) -> bytes:
        return self._key

    def offset(self) -> int:
        return self._offset

    def partition(self) -> int:
        return self._partition

    def error(self) -> None:
        return None


def test_a_batch_taken_whole_while_catching_up_keeps_each_items_last_record_in_order(tmp_path: Path) -> None:
    book = loader(tmp_path, catching_up=True)
    assert book.store is not None
    reopened = {"id": "i2", "key": OPENED["key"], "status": "open", "count": 1}
    batch = [
        Fetched(b"i2", saved({**reopened, "status": "resolved"}), 0),
        Fetched(b"i1", saved({**OPENED, "status": "resolved"}), 5, partition=1),
        Fetched(b"i2", saved(reopened), 1),  # i2 is the key's latest item: its entries go last
    ]
    offsets = {0: 2, 1: 6}  # as whale.changelog.PartitionReader hands them out with the batch
    book._take(batch)
    book._applied(offsets)
    assert book.records_read == 3
    assert book.store.offsets() == {0: 2, 1: 6}
    assert last_id(book.store.batch(), OPENED["key"]) == "i2"
    assert open_id(book.store.batch(), OPENED["key"]) == "i2"
    assert json.loads(book.store.get(b"ii1") or b"")["status"] == "resolved"
    book.store.close()


def test_a_closed_item_read_blind_leaves_a_stale_open_entry_that_is_not_taken_as_open(tmp_path: Path) -> None:
    book = loader(tmp_path, catching_up=True)
    assert book.store is not None
    book._record(b"i1", saved(OPENED))
    book._applied({0: 1})
    book._begin()
    book._record(b"i1", saved({**OPENED, "status": "resolved", "updated_at": CLOSED_AT}))
    book._applied({0: 2})
    assert book.store.get(b"o" + OPENED["key"].encode()) == b"i1"  # written blind: not removed
    assert open_id(book.store.batch(), OPENED["key"]) is None  # but the item is not open
    assert book.store.get(expiry_key(T0, b"i1")) is not None  # at the record's time
    book.store.close()


def test_a_record_that_is_not_an_item_is_read_as_a_cloudevent(tmp_path: Path) -> None:
    book = loader(tmp_path, catching_up=True)
    assert book.store is not None
    # a value whose id is not the record's key: read through its headers (no ce_type: not a CloudEvent)
    headers = tuple((k, v) for k, v in to_binary(record({"id": "x", "key": "k"})).headers if k != "ce_type")
    book._record(b"y", Msg(KafkaMessage(b"y", b'{"id": "x", "key": "k", "status": "open"}', headers)))
    # an item in another layout (decoded, not matched by its head)
    book._record(b"z", Msg(KafkaMessage(b"z", b'{"status": "open", "key": "k2", "id": "z"}', ())))
    book._applied({0: 2})
    assert open_id(book.store.batch(), "k") is None
    assert open_id(book.store.batch(), "k2") == "z"
    book.store.close()


def test_expired_names_closed_items_last_changed_before_the_cutoff_and_the_stale_entries(
    tmp_path: Path,
) -> None:
    db = store(tmp_path)
    batch = db.batch()
    old = {"id": "old", "key": "a", "status": "resolved", "updated_at": "2027-01-15T07:00:00Z"}
    recent = {"id": "new", "key": "b", "status": "resolved", "updated_at": "2027-01-15T09:00:00Z"}
    reopened = {"id": "back", "key": "c", "status": "resolved", "updated_at": "2027-01-15T07:00:00Z"}
    for item in (old, recent, reopened, {"id": "live", "key": "d", "status": "open"}):
        put_item(batch, item, OPEN_STATES)
    put_item(batch, {**reopened, "status": "open"}, OPEN_STATES)  # its closed entry is now stale
    db.commit(batch)
    assert [k for k, _ in db.items(EXPIRY)] == [
        expiry_key(T0 - 3600, b"back"),
        expiry_key(T0 - 3600, b"old"),
        expiry_key(T0 + 3600, b"new"),
    ]
    ids, stale = expired(db, cutoff=T0, limit=100)
    assert ids == [(expiry_key(T0 - 3600, b"old"), "old")] and stale == [expiry_key(T0 - 3600, b"back")]
    assert expired(db, cutoff=T0, limit=1) == ([], [expiry_key(T0 - 3600, b"back")])  # bounded
    db.close()


def test_dropping_an_item_removes_the_key_entries_that_name_it(tmp_path: Path) -> None:
    db = store(tmp_path)
    batch = db.batch()
    put_item(batch, {"id": "i1", "key": "a", "status": "resolved", "updated_at": CLOSED_AT}, OPEN_STATES)
    put_item(batch, {"id": "i2", "key": "b", "status": "open"}, OPEN_STATES)
    db.commit(batch)
    drop_item(batch, "i1")
    db.commit(batch)
    assert last_id(db.batch(), "a") is None and db.get(b"ii1") is None
    assert expired(db, cutoff=T0 + 1, limit=10) == ([], [expiry_key(T0, b"i1")])  # then swept as stale
    assert last_id(db.batch(), "b") == "i2"
    db.close()


def test_an_item_changed_again_while_closed_is_named_once(tmp_path: Path) -> None:
    db = store(tmp_path)
    batch = db.batch()
    closed = {"id": "i1", "key": "a", "status": "resolved", "updated_at": "2027-01-15T07:00:00Z"}
    put_item(batch, closed, OPEN_STATES)
    put_item(batch, {**closed, "updated_at": "2027-01-15T07:30:00Z"}, OPEN_STATES)  # a comment
    db.commit(batch)
    assert expired(db, cutoff=T0, limit=10) == (
        [(expiry_key(T0 - 3600, b"i1"), "i1")],
        [expiry_key(T0 - 1800, b"i1")],
    )
    db.close()
