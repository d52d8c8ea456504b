"""The to-do stage's decisions and the /todos API (fakes for Kafka; the real flow is in tests/integration/e2e)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import todo_api
from whale_todo.settings import Settings
from whale_todo.stage import (
    TodoBook,
    TodoStage,
    load_rules,
    record,
)

from whale import authz, topics
from whale.cloudevent import CloudEvent
from whale.producer import Delivered
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings, open_store
from whale.testing import FakeProducer, FakeView, Sent
from whale.todos import CREATED, RESOLVED, UPDATED
from whale.web.errors import install_error_handlers

RULE = """
id: disk-full
match:
  all:
    - {field: type, equals: vm.disk.alert}
    - {field: data.value, greater: 85}
target: {kind: workflow, name: disk.cleanup}
"""


def alert(type: str = "printer.jammed", subject: str | None = "floor-3", **data: Any) -> CloudEvent:
    return CloudEvent.create(type=type, source="tests/todo", subject=subject, data=data or {"x": 1})


@dataclass
class Received:
    event: CloudEvent
    topic: str = topics.EVENTS


def stage(tmp_path: Path, **settings: Any) -> tuple[TodoStage, TodoBook, FakeProducer]:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "disk.yaml").write_text(RULE)
    conf = Settings(whale=WhaleSettings(rules_dir=tmp_path / "rules"), **settings)
    book = TodoBook(conf, LocalStore(tmp_path / "book", {"stage": "todo"}, StoreSettings(dir=tmp_path)))
    producer = FakeProducer()
    return TodoStage(conf, producer, load_rules(conf.whale.rules_dir), book), book, producer


def announced(producer: FakeProducer) -> list[CloudEvent]:
    return [s.event for s in producer.sent if s.topic == topics.RESULTS]


async def test_an_event_no_rule_matches_opens_a_todo_recorded_and_announced(tmp_path: Path) -> None:
    st, _book, producer = stage(tmp_path)
    event = alert()
    await st.handle(Received(event))
    [saved] = [s for s in producer.sent if s.topic == topics.TODOS]
    [created] = announced(producer)
    assert created.type == CREATED
    assert created.extensions["causationid"] == event.id
    assert created.data["todo"]["status"] == "open"
    assert created.data["todo"]["count"] == 1
    assert saved.key == created.data["todo"]["id"] == saved.event.data["id"]
    assert "seen" not in created.data["todo"]


async def test_a_dry_run_replayed_event_opens_nothing(tmp_path: Path) -> None:
    st, _book, producer = stage(tmp_path)
    event = alert()
    await st.handle(Received(event.model_copy(update={"extensions": {"replaymode": "dry"}})))
    assert producer.sent == []


async def test_an_event_an_enabled_rule_matches_is_handled_and_opens_nothing(tmp_path: Path) -> None:
    st, _, producer = stage(tmp_path)
    await st.handle(Received(alert("vm.disk.alert", "host-1", value=93)))
    assert producer.sent == []
    await st.handle(
        Received(alert("vm.disk.alert", "host-1", value=50))
    )  # below threshold: nobody handles it
    assert [e.type for e in announced(producer)] == [CREATED]


async def test_a_duplicate_for_an_open_item_is_merged_and_a_redelivery_is_not_counted(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    first, second = alert(), alert()
    await st.handle(Received(first))
    await st.handle(Received(second))
    await st.handle(Received(second))  # at-least-once redelivery
    events = announced(producer)
    assert [e.type for e in events] == [CREATED, UPDATED]
    assert events[1].data["change"] == "merged"
    assert events[1].data["todo"]["count"] == 2
    assert len(book.items) == 1
    await st.handle(Received(alert(subject="floor-4")))  # another subject: another item
    assert len(book.items) == 2


async def test_a_configured_merge_key_template_groups_by_a_data_field(tmp_path: Path) -> None:
    st, book, _ = stage(tmp_path, merge_keys={"printer.jammed": "{{ data.model }}"})
    await st.handle(Received(alert(subject="a", model="X1")))
    await st.handle(Received(alert(subject="b", model="X1")))
    await st.handle(Received(alert(subject="c", model="X2")))
    assert sorted(i["count"] for i in book.items.values()) == [1, 2]


async def test_platform_events_and_results_never_become_todos(tmp_path: Path) -> None:
    st, _, producer = stage(tmp_path)
    await st.handle(Received(alert("whale.approval.granted")))
    await st.handle(Received(alert("custom.thing"), topic=topics.RESULTS))
    assert producer.sent == []


async def test_a_todo_request_and_an_action_output_request_open_items_by_key(tmp_path: Path) -> None:
    st, book, _producer = stage(tmp_path)
    request = {"title": "disk still full on h1", "key": "disk|h1", "details": {"after": 91}}
    await st.handle(Received(alert("whale.todo.requested", None, **request)))
    result = alert("whale.action.succeeded", None, output={"todo_request": request})
    await st.handle(Received(result, topic=topics.RESULTS))
    [item] = book.items.values()
    assert item["title"] == "disk still full on h1"
    assert item["count"] == 2
    assert item["origin"] == "requested"


async def test_a_pending_approval_opens_a_todo_its_answer_resolves(tmp_path: Path) -> None:
    st, book, _producer = stage(tmp_path)
    request = {"title": "approval wf-1.gate: Restart?", "key": "approval:wf-1.gate", "type": "whale.approval"}
    waiting = alert("whale.workflow.task.waiting", "wf-1", output={"todo_request": request})
    await st.handle(Received(waiting, topic=topics.RESULTS))
    [item] = book.items.values()
    assert item["status"] == "open" and item["type"] == "whale.approval"
    done = {"key": "approval:wf-1.gate", "by": "ann", "resolution": "approved"}
    answered = alert("whale.workflow.task.succeeded", "wf-1", output={"approved": True, "todo_resolve": done})
    await st.handle(Received(answered, topic=topics.RESULTS))
    await st.handle(Received(answered, topic=topics.RESULTS))  # redelivered: nothing more
    [item] = book.items.values()
    assert (item["status"], item["resolved_by"], item["resolution"]) == ("resolved", "ann", "approved")
    unknown = alert(
        "whale.workflow.task.succeeded", "wf-2", output={"todo_resolve": {"key": "approval:nope"}}
    )
    await st.handle(Received(unknown, topic=topics.RESULTS))  # no open item of that key: nothing


async def test_claim_then_resolve_change_the_item_and_a_resolved_key_opens_a_new_item(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    await st.handle(Received(alert()))
    [todo_id] = book.items
    claim = alert("whale.todo.change.requested", todo_id, todo_id=todo_id, op="claim", by="alice")
    await st.handle(Received(claim))
    assert book.items[todo_id]["status"] == "claimed"
    assert book.items[todo_id]["claimed_by"] == "alice"
    resolve = alert(
        "whale.todo.change.requested", todo_id, todo_id=todo_id, op="resolve", by="alice", comment="reset"
    )
    await st.handle(Received(resolve))
    await st.handle(Received(resolve))  # redelivered: no second change
    assert [e.type for e in announced(producer)] == [CREATED, UPDATED, RESOLVED]
    assert book.items[todo_id]["resolution"] == "reset"
    await st.handle(Received(alert()))
    assert len(book.items) == 2


async def test_a_command_for_an_unknown_item_or_op_changes_nothing(tmp_path: Path) -> None:
    st, _, producer = stage(tmp_path)
    await st.handle(Received(alert("whale.todo.change.requested", "x", todo_id="nope", op="claim", by="a")))
    assert producer.sent == []


def api_client() -> tuple[TestClient, FakeProducer]:
    book = TodoBook(Settings(), open_store(f"todo-{uuid.uuid4().hex}", {"stage": "todo"}))
    view = FakeView()

    def apply(sent: Sent) -> None:
        change = book.decide(sent.event, handled=False)
        if change is not None:
            view.apply(change.item["id"], record(change.item))

    producer = FakeProducer(on_send=apply)
    app = FastAPI()
    install_error_handlers(app)
    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    todo_api.install(app, producer, WhaleSettings(), view=view)
    return TestClient(app), producer


def test_the_api_opens_lists_claims_and_resolves_items_through_commands() -> None:
    client, producer = api_client()
    opened = client.post("/todos", json={"title": "rotate the key", "key": "rotate"})
    assert opened.status_code == 201, opened.text
    todo = opened.json()
    again = client.post("/todos", json={"title": "rotate the key", "key": "rotate"})
    assert again.json()["id"] == todo["id"]
    assert again.json()["count"] == 2
    listed = client.get("/todos").json()
    assert [t["id"] for t in listed["todos"]] == [todo["id"]]
    claimed = client.post(f"/todos/{todo['id']}/claim", json={"by": "bob"})
    assert claimed.status_code == 200
    assert claimed.json()["status"] == "claimed"
    resolved = client.post(f"/todos/{todo['id']}/resolve", json={"by": "bob", "comment": "done"})
    assert resolved.json()["status"] == "resolved"
    assert client.get("/todos").json()["todos"] == []
    assert client.get("/todos", params={"status": "resolved"}).json()["total"] == 1
    assert all(s.topic == topics.EVENTS for s in producer.sent)


def test_the_list_pages_with_offset_and_limit_and_reports_the_total() -> None:
    client, _ = api_client()
    for key in ("a", "b", "c"):
        assert client.post("/todos", json={"title": f"item {key}", "key": key}).status_code == 201
    first = client.get("/todos", params={"limit": 2}).json()
    second = client.get("/todos", params={"limit": 2, "offset": 2}).json()
    assert (len(first["todos"]), len(second["todos"]), first["total"], second["total"]) == (2, 1, 3, 3)
    assert {t["id"] for t in first["todos"]}.isdisjoint(t["id"] for t in second["todos"])


def test_the_api_names_the_problem_for_unknown_resolved_or_invalid_requests() -> None:
    client, _ = api_client()
    missing = client.post("/todos/nope/claim", json={"by": "bob"})
    assert missing.status_code == 404
    assert missing.json()["problems"] == [{"field": "todo_id", "message": "no to-do 'nope'"}]
    todo = client.post("/todos", json={"title": "t"}).json()
    client.post(f"/todos/{todo['id']}/resolve", json={"by": "bob"})
    again = client.post(f"/todos/{todo['id']}/claim", json={"by": "bob"})
    assert again.status_code == 409
    invalid = client.post(f"/todos/{todo['id']}/claim", json={})
    assert invalid.status_code == 400
    assert invalid.json()["problems"] == [{"field": "body.by", "message": "Field required"}]


async def test_one_action_request_seen_as_task_and_action_results_is_counted_once(tmp_path: Path) -> None:
    st, book, _ = stage(tmp_path)
    request = {"title": "t", "key": "k", "details": {}, "request_id": "idem/notify"}
    for type in ("whale.workflow.task.succeeded", "whale.action.succeeded"):
        await st.handle(Received(alert(type, None, output={"todo_request": request}), topic=topics.RESULTS))
    [item] = book.items.values()
    assert item["count"] == 1


async def test_a_batch_writes_each_items_latest_state_once_and_every_announcement(tmp_path: Path) -> None:
    st, _, producer = stage(tmp_path)
    await st.handle_batch([Received(alert()), Received(alert()), Received(alert())])
    states = [s for s in producer.sent if s.topic == topics.TODOS]
    assert len(states) == 1
    assert states[0].event.data["count"] == 3
    assert [e.type for e in announced(producer)] == [CREATED, UPDATED, UPDATED]


async def test_a_failed_write_rolls_the_book_back_so_the_retry_decides_again(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    batch = [Received(alert())]

    async def broken(topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        raise RuntimeError("Kafka is down")

    working = producer.send
    producer.send = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await st.handle_batch(batch)
    assert book.items == {}
    producer.send = working  # type: ignore[method-assign]
    await st.handle_batch(batch)
    assert [e.type for e in announced(producer)] == [CREATED]
