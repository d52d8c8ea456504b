"""The to-do book's loader: while catching up it stores its own records' item JSON as read."""

from __future__ import annotations

from pathlib import Path

from whale_todo.stage import record
from whale_todo.store import SAVED_TYPE, TodoLoader, open_id

from whale.binding import KafkaMessage, to_binary
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale.todos import OPEN_STATES, SAVED


class Msg:
    def __init__(self, message: KafkaMessage) -> None:
        self._m = message

    def value(self) -> bytes | None:
        return self._m.value

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._m.headers)


def loader(tmp_path: Path, catching_up: bool) -> TodoLoader:
    state = StoreSettings(dir=tmp_path, cache_mb=1, write_buffer_mb=1)
    book = TodoLoader(WhaleSettings(kafka_bootstrap="127.0.0.1:1"), state, OPEN_STATES)
    book.store = LocalStore(tmp_path / "todo", {"stage": "todo"}, state)
    book.catching_up = catching_up
    book._begin()
    return book


def test_the_saved_type_is_the_stages_own() -> None:
    assert SAVED.encode() == SAVED_TYPE


def test_items_read_while_catching_up_are_stored_as_written_and_indexed_while_open(tmp_path: Path) -> None:
    for catching_up in (True, False):
        book = loader(tmp_path / str(catching_up), catching_up)
        assert book.store is not None and book._batch is not None
        opened = {"id": "i1", "key": "printer.jammed|floor-3", "status": "open", "count": 1}
        message = to_binary(record(opened))
        book._record(b"i1", Msg(message))
        assert open_id(book._batch, "printer.jammed|floor-3") == "i1"
        book._record(b"i1", Msg(to_binary(record({**opened, "status": "resolved"}))))
        book._applied({0: 2})
        assert open_id(book.store.batch(), "printer.jammed|floor-3") is None
        assert book.store.get(b"ii1") is not None and book.read == 2
        if catching_up:  # the value as read, not re-encoded
            book._begin()
            book._record(b"i1", Msg(message))
            book._applied({0: 3})
            assert book.store.get(b"ii1") == message.value
        book.store.close()


def test_a_record_that_is_not_the_stages_own_is_read_as_a_cloudevent(tmp_path: Path) -> None:
    book = loader(tmp_path, catching_up=True)
    assert book._batch is not None
    headers = tuple((k, v) for k, v in to_binary(record({"id": "x", "key": "k"})).headers if k != "ce_type")
    book._record(b"x", Msg(KafkaMessage(b"x", b'{"id": "x", "key": "k", "status": "open"}', headers)))
    assert open_id(book._batch, "k") is None  # no ce_type: not a valid CloudEvent, skipped
