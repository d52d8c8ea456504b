"""The event center's ``whale.executor.state`` view keeps each record's JSON, not a decoded event,
and the runs and approvals read from it are the same as from a view of CloudEvents."""

from __future__ import annotations

from typing import Any

from whale_event_center.runs_view import RunBook
from whale_event_center.state_view import StateView
from whale_executor.state import state_message

from whale.binding import to_binary, to_structured
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings


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


def view() -> StateView:
    return StateView(WhaleSettings(), "whale.executor.state")


def test_an_executor_record_is_kept_as_the_json_it_was_written_in() -> None:
    state = view()
    feed(state, "ops/run/a", run("a"))
    assert state._values["ops/run/a"].startswith(b'{"kind":"action"')  # bytes, not a decoded event
    assert state.records() == {"ops/run/a": run("a")}


def test_a_later_record_replaces_the_key_and_a_tombstone_deletes_it() -> None:
    state = view()
    feed(state, "ops/run/a", run("a", status="started"))
    feed(state, "ops/run/b", run("b"))
    feed(state, "ops/run/a", run("a"))
    assert state.records()["ops/run/a"]["status"] == "finished"
    state._record(b"ops/run/a", Msg(None))
    assert list(state.records()) == ["ops/run/b"] and len(state) == 1


def test_a_structured_record_keeps_its_data_and_an_unreadable_one_is_skipped() -> None:
    state = view()
    event = CloudEvent.create(type="whale.executor.run", source="/t", data=run("s"))
    structured = to_structured(event)
    state._record(b"ops/run/s", Msg(structured.value, list(structured.headers)))
    binary = to_binary(event)
    state._record(b"ops/run/bad", Msg(b"{not json", [*binary.headers]))
    state._record(b"ops/run/junk", Msg(b"junk", [("content-type", b"text/plain")]))
    assert state.records() == {"ops/run/s": run("s")}


def test_the_run_book_of_the_view_lists_its_runs_and_answers() -> None:
    state = view()
    feed(state, "ops/run/a", run("a"))
    feed(
        state,
        "ops/approval/wf-1/gate",
        {"kind": "approval", "run_id": "wf-1", "task": "gate", "recorded_at": 1.0},
    )
    book = RunBook.of(state)
    assert list(book.runs) == ["a"] and book.keys["a"] == "ops/run/a"
    assert list(book.answers) == ["ops/approval/wf-1/gate"]
