"""Working a to-do in the stage: assignee, priority, due time from the per-type SLA, reopen by a
person, the events merged into it, and escalation (``whale.todo.overdue``) once per due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from whale_todo.escalation import Escalator
from whale_todo.settings import Settings as TodoSettings
from whale_todo.work import MERGED_LIMIT, OVERDUE, parse_priority

from whale import topics
from whale.cloudevent import CloudEvent, parse_time
from whale.testing import FakeProducer

from .test_stage import Received, alert, announced, stage


def command(todo_id: str, op: str, by: str = "ann", **data: Any) -> Received:
    return Received(alert("whale.todo.change.requested", todo_id, todo_id=todo_id, op=op, by=by, **data))


def escalator(st: Any, book: Any, producer: FakeProducer) -> Escalator:
    return Escalator("whale/todo", 30.0, producer, book, st.lock)


def overdue_events(producer: FakeProducer) -> list[CloudEvent]:
    return [s.event for s in producer.sent if s.topic == topics.EVENTS and s.event.type == OVERDUE]


def only_item(book: Any) -> dict[str, Any]:
    (item,) = book.items.values()
    return dict(item)


async def test_a_new_item_gets_the_types_sla_due_time_and_default_priority_and_no_assignee(
    tmp_path: Path,
) -> None:
    st, book, _ = stage(tmp_path, sla={"printer.*": 600}, sla_default=60)
    await st.handle(Received(alert()))
    item = only_item(book)
    assert (item["assignee"], item["priority"], item["sla_seconds"]) == (None, "p3", 600)
    due = parse_time(item["due_at"]) - parse_time(item["created_at"])
    assert timedelta(seconds=599) <= due <= timedelta(seconds=601)
    await st.handle(Received(alert("scanner.jammed")))
    assert {i["type"]: i["sla_seconds"] for i in book.items.values()}["scanner.jammed"] == 60


async def test_priority_comes_from_the_severity_label_else_the_type_setting_else_the_default(
    tmp_path: Path,
) -> None:
    st, book, _ = stage(tmp_path, priorities={"scanner.*": "high"}, default_priority="low")
    await st.handle(Received(alert("printer.jammed", labels={"severity": "critical"})))
    await st.handle(Received(alert("scanner.jammed")))
    await st.handle(Received(alert("fax.jammed")))
    assert {i["type"]: i["priority"] for i in book.items.values()} == {
        "printer.jammed": "p1",
        "scanner.jammed": "p2",
        "fax.jammed": "p4",
    }


def test_priorities_are_p1_to_p4_with_named_aliases_and_a_bad_setting_is_refused() -> None:
    assert [parse_priority(p) for p in ("P1", "high", "normal", "low")] == ["p1", "p2", "p3", "p4"]
    with pytest.raises(ValueError, match="one of p1"):
        parse_priority("urgent")
    with pytest.raises(ValidationError, match="default_priority"):
        TodoSettings(default_priority="urgent")


async def test_merged_events_are_linked_newest_last_and_capped_with_a_count(tmp_path: Path) -> None:
    st, book, _ = stage(tmp_path)
    sent = [alert() for _ in range(MERGED_LIMIT + 5)]
    for event in sent:
        await st.handle(Received(event))
    item = only_item(book)
    assert item["count"] == MERGED_LIMIT + 5
    assert [e["id"] for e in item["merged_events"]] == [e.id for e in sent[5:]]
    assert item["merged_omitted"] == 5
    assert set(item["merged_events"][0]) == {"id", "type", "source", "time"}


async def test_claim_assigns_to_the_claimer_and_an_update_assigns_reprioritises_and_sets_due(
    tmp_path: Path,
) -> None:
    st, book, _ = stage(tmp_path)
    await st.handle(Received(alert()))
    todo_id = only_item(book)["id"]
    await st.handle(command(todo_id, "claim", by="bob"))
    assert (only_item(book)["assignee"], only_item(book)["status"]) == ("bob", "claimed")
    due = "2030-01-01T00:00:00Z"
    fields = {"assignee": "carol", "priority": "critical", "due": due}
    await st.handle(command(todo_id, "update", fields=fields))
    item = only_item(book)
    assert (item["assignee"], item["claimed_by"], item["priority"], item["due_at"]) == (
        "carol",
        "carol",
        "p1",
        due,
    )
    assert item["history"][-1]["text"] == f"ann: assigned to carol, priority p1, due {due}"
    await st.handle(command(todo_id, "update", fields={"assignee": None}))
    assert (only_item(book)["assignee"], only_item(book)["status"]) == (None, "open")


async def test_a_person_reopens_a_resolved_item_recorded_in_history_and_the_clock_restarts(
    tmp_path: Path,
) -> None:
    st, book, producer = stage(tmp_path, sla_default=60)
    await st.handle(Received(alert()))
    todo_id = only_item(book)["id"]
    await st.handle(command(todo_id, "reopen"))  # not resolved: refused
    assert only_item(book).get("reopened") is None
    await st.handle(command(todo_id, "resolve", comment="fixed"))
    await st.handle(command(todo_id, "reopen", by="dave", comment="not fixed"))
    item = only_item(book)
    assert (item["status"], item["resolved_by"], item["reopened"]) == ("open", None, 1)
    assert item["history"][-1]["kind"] == "reopened"
    assert item["history"][-1]["text"] == "reopened by dave: not fixed"
    assert parse_time(item["due_at"]) > parse_time(item["created_at"])
    assert announced(producer)[-1].data["change"] == "reopen"


async def test_an_overdue_item_is_escalated_once_per_due_time_with_how_late(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path, sla_default=60)
    await st.handle(Received(alert(labels={"severity": "warning"})))
    todo_id = only_item(book)["id"]
    await st.handle(command(todo_id, "claim", by="bob"))
    esc = escalator(st, book, producer)
    now = datetime.now(UTC)
    assert await esc.sweep(now) == 0  # not due yet
    assert await esc.sweep(now + timedelta(seconds=90)) == 1
    assert await esc.sweep(now + timedelta(seconds=120)) == 0  # once per due time
    (event,) = overdue_events(producer)
    assert event.subject == todo_id
    data = event.data
    assert (data["todo_id"], data["assignee"], data["priority"]) == (todo_id, "bob", "p3")
    assert 25 <= data["late_seconds"] <= 35
    item = only_item(book)
    assert item["overdue_for"] == item["due_at"]
    assert item["history"][-1]["kind"] == "overdue"
    assert [s.topic for s in producer.sent[-2:]] == [topics.TODOS, topics.EVENTS]
    await st.handle(command(todo_id, "update", fields={"due": "2000-01-01T00:00:00Z"}))
    assert await esc.sweep() == 1  # a new due time arms it again


async def test_resolved_items_and_items_without_a_due_time_are_never_escalated(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path, sla_default=0)
    await st.handle(Received(alert()))
    assert only_item(book)["due_at"] is None
    (tmp_path / "two").mkdir()
    st2, book2, producer2 = stage(tmp_path / "two", sla_default=1)
    await st2.handle(Received(alert()))
    await st2.handle(command(only_item(book2)["id"], "resolve"))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await escalator(st, book, producer).sweep(later) == 0
    assert await escalator(st2, book2, producer2).sweep(later) == 0


def test_the_example_rule_routes_an_overdue_event_to_the_chat_action_with_a_readable_text(
    tmp_path: Path,
) -> None:
    from whale_todo.stage import load_rules

    from whale.rules import templating
    from whale.rules.paths import event_context

    examples = Path(__file__).resolve().parents[2] / "examples" / "todos"
    rules = load_rules(examples)
    data = {"todo_id": "t1", "title": "disk full on vm-1", "assignee": None, "priority": "p2"}
    event = CloudEvent.create(
        type=OVERDUE,
        source="whale/todo",
        data={**data, "due_at": "2030-01-01T00:00:00Z", "late_seconds": 754.2},
    )
    (rule,) = rules.match(event_context(event))
    assert (rule.id, rule.target.kind, rule.target.name) == ("todo-overdue-to-chat", "action", "notify.slack")
    text = templating.render_value(rule.params, event_context(event))["text"]
    assert text.startswith("[p2] to-do overdue by 13 min: disk full on vm-1 (assignee: nobody;")
