"""The event center's ``whale.executor.state`` view keeps each record's JSON in its local store (not a
decoded event), reads the data of a structured record, skips an unreadable one, serves the store once
caught up, and a store of another cluster or layout is rebuilt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from whale_event_center.runs_store import DATA
from whale_event_center.runs_view import MemoryBook, RunBook, RunFilter
from whale_event_center.state_view import StateView
from whale_executor.state import state_message

from whale.binding import to_binary, to_structured
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings


class Msg:
    """What the follower hands :meth:`StateView._record`: a confluent-kafka message's accessors."""

    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> None:
        self._value = value
        self._headers = headers

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


def run(run_id: str, **changes: Any) -> dict[str, Any]:
    return {"kind": "action", "run_id": run_id, "pool": "ops", "status": "finished", "attempt": 1,
            "target": {"kind": "action", "name": "core.noop", "pool": "ops"}, "recorded_at": 1.0, **changes}  # fmt: skip


def feed(view: StateView, key: str, record: dict[str, Any]) -> None:
    message = state_message(key, "whale.executor.run", "whale/executor/ops", record)
    assert message is not None
    view._record(message.key or b"", Msg(message.value, list(message.headers)))


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateView]:
    local = LocalStore(tmp_path / "runs", {"stage": "test"}, StoreSettings(dir=tmp_path, cache_mb=1))
    view = StateView(WhaleSettings(), "whale.executor.state", local=local)
    view._caught_up.set()  # as once the follower read the topic
    yield view
    local.close()


def stored(view: StateView) -> dict[str, bytes]:
    return {key[1:].decode(): value for key, value in view.local.items(DATA)}


def test_an_executor_record_is_kept_as_the_json_it_was_written_in(state: StateView) -> None:
    feed(state, "ops/run/a", run("a"))
    assert stored(state)["ops/run/a"].startswith(b'{"kind":"action"')  # the bytes, not a decoded event
    assert RunBook.of(state).get("a") == run("a")


def test_a_later_record_replaces_the_key_and_a_tombstone_deletes_it(state: StateView) -> None:
    feed(state, "ops/run/a", run("a", status="started"))
    feed(state, "ops/run/b", run("b"))
    feed(state, "ops/run/a", run("a"))
    book = RunBook.of(state)
    assert (book.get("a") or {})["status"] == "finished"
    state._record(b"ops/run/a", Msg(None))
    assert list(stored(state)) == ["ops/run/b"]
    runs, total = RunBook.of(state).runs_page(RunFilter(), 0, 10)
    assert [r["run_id"] for r in runs] == ["b"] and total == 1


def test_a_structured_record_keeps_its_data_and_an_unreadable_one_is_skipped(state: StateView) -> None:
    event = CloudEvent.create(type="whale.executor.run", source="/t", data=run("s"))
    structured = to_structured(event)
    state._record(b"ops/run/s", Msg(structured.value, list(structured.headers)))
    binary = to_binary(event)
    state._record(b"ops/run/bad", Msg(b"{not json", [*binary.headers]))
    state._record(b"ops/run/junk", Msg(b"junk", [("content-type", b"text/plain")]))
    assert list(stored(state)) == ["ops/run/s"] and RunBook.of(state).get("s") == run("s")


def test_the_apis_read_an_empty_book_until_the_view_caught_up(state: StateView) -> None:
    feed(state, "ops/run/a", run("a"))
    state._caught_up.clear()
    book = RunBook.of(state)
    assert isinstance(book, MemoryBook) and book.get("a") is None


def test_a_store_of_another_cluster_is_rebuilt_and_the_same_one_resumed(tmp_path: Path) -> None:
    settings = StoreSettings(dir=tmp_path, cache_mb=1)
    view = StateView(WhaleSettings(), "whale.executor.state", state=settings)
    first = view._local("cluster-a")
    assert first is not None and first.rebuilt
    feed(view, "ops/run/a", run("a"))
    first.commit(None, {0: 1})
    assert view._local("cluster-a") is first  # following again after a failure: the same store
    first.close()
    view._db = None
    again = view._local("cluster-a")  # a restart: the same slot is claimed again
    assert again is not None and not again.rebuilt and again.offset(0) == 1
    assert again.path == first.path and list(again.items(DATA))
    other = view._local("cluster-b")
    assert other is not None and other.rebuilt and other.reason.startswith("foreign")
    assert other.offset(0) == 0 and list(other.items()) == []
    other.close()
