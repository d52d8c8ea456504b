"""``PATCH /todos/{id}`` (assignee, priority, due), ``POST /todos/{id}/reopen`` and the list's
``assignee``, ``priority`` and ``overdue`` filters (the to-do stage played by a book in-process)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import todo_api
from whale_todo.settings import Settings as TodoSettings
from whale_todo.stage import TodoBook, record

from whale import authz, topics
from whale.settings import WhaleSettings
from whale.store import open_store
from whale.testing import FakeProducer, FakeView, Sent
from whale.web.errors import install_error_handlers

from .fakes import PEOPLE_VIEW


def client(people: Any = PEOPLE_VIEW, **settings: Any) -> tuple[TestClient, FakeProducer]:
    book = TodoBook(TodoSettings(**settings), open_store(f"todo-{uuid.uuid4().hex}", {"stage": "todo"}))
    view = FakeView()

    def apply(sent: Sent) -> None:
        change = book.decide(sent.event, handled=False)
        if change is not None:
            view.apply(change.item["id"], record(change.item))

    producer = FakeProducer(on_send=apply)
    app = FastAPI()
    install_error_handlers(app)
    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    todo_api.install(app, producer, WhaleSettings(), view=view, people=people)
    return TestClient(app), producer


def audits(producer: FakeProducer) -> list[str]:
    return [s.event.type for s in producer.sent if s.topic == topics.EVENTS and "audit" in s.event.type]


def test_patch_assigns_a_known_person_reprioritises_and_sets_the_due_time_audited() -> None:
    api, producer = client()
    todo = api.post("/todos", json={"title": "rotate the key"}).json()
    assert (todo["assignee"], todo["priority"]) == (None, "p3")
    body = {"assignee": "operator-person", "priority": "high", "due": "2030-01-01T02:00:00+02:00"}
    changed = api.patch(f"/todos/{todo['id']}", json=body)
    assert changed.status_code == 200, changed.text
    item = changed.json()
    assert (item["assignee"], item["status"], item["priority"], item["due_at"]) == (
        "operator-person",
        "claimed",
        "p2",
        "2030-01-01T00:00:00Z",
    )
    assert audits(producer)[-1] == "whale.audit.todo.update"
    cleared = api.patch(f"/todos/{todo['id']}", json={"assignee": None, "due": None}).json()
    assert (cleared["assignee"], cleared["status"], cleared["due_at"], cleared["priority"]) == (
        None,
        "open",
        None,
        "p2",
    )


def test_patch_names_the_field_of_an_unknown_assignee_a_bad_priority_or_due_or_an_empty_body() -> None:
    api, _ = client()
    todo_id = api.post("/todos", json={"title": "t"}).json()["id"]

    def problem(body: dict[str, Any]) -> tuple[int, list[str]]:
        answer = api.patch(f"/todos/{todo_id}", json=body)
        return answer.status_code, [p["field"] for p in answer.json()["problems"]]

    assert problem({"assignee": "mallory"}) == (400, ["body.assignee"])
    assert problem({"priority": "urgent"}) == (400, ["body.priority"])
    assert problem({"priority": None}) == (400, ["body.priority"])
    assert problem({"due": "tomorrow"}) == (400, ["body.due"])
    assert problem({"due": "2030-01-01T00:00:00"}) == (400, ["body.due"])  # no offset
    assert problem({"colour": "red"}) == (400, ["body.colour"])
    assert problem({}) == (400, ["body"])
    assert api.patch("/todos/nope", json={"priority": "p1"}).status_code == 404


def test_any_assignee_name_is_accepted_when_the_event_center_knows_no_people() -> None:
    api, _ = client(people=None)
    todo_id = api.post("/todos", json={"title": "t"}).json()["id"]
    assert api.patch(f"/todos/{todo_id}", json={"assignee": "mallory"}).json()["assignee"] == "mallory"


def test_reopen_reopens_only_a_resolved_item_records_who_and_is_audited() -> None:
    api, producer = client()
    todo_id = api.post("/todos", json={"title": "t"}).json()["id"]
    early = api.post(f"/todos/{todo_id}/reopen", json={})
    assert early.status_code == 409
    assert early.json()["problems"][0]["field"] == "todo_id"
    api.post(f"/todos/{todo_id}/resolve", json={"by": "bob"})
    assert api.patch(f"/todos/{todo_id}", json={"priority": "p1"}).status_code == 409
    reopened = api.post(f"/todos/{todo_id}/reopen", json={"comment": "back again"})
    assert reopened.status_code == 200, reopened.text
    item = reopened.json()
    assert (item["status"], item["reopened"]) == ("open", 1)
    assert item["history"][-1]["text"] == "reopened by dev-mode: back again"
    assert audits(producer)[-1] == "whale.audit.todo.reopen"


def test_the_list_filters_by_assignee_priority_and_overdue() -> None:
    api, _ = client(sla={"late.*": 0.001}, sla_default=3600)
    late = api.post("/todos", json={"title": "late", "type": "late.one"}).json()
    mine = api.post("/todos", json={"title": "mine"}).json()
    api.patch(f"/todos/{mine['id']}", json={"assignee": "admin-person", "priority": "p1"})

    def ids(**params: Any) -> set[str]:
        return {t["id"] for t in api.get("/todos", params=params).json()["todos"]}

    assert ids(assignee="admin-person") == {mine["id"]}
    assert ids(priority="critical") == ids(priority="p1") == {mine["id"]}
    assert ids(overdue="true") == {late["id"]}
    assert ids(overdue="false") == {mine["id"]}
    bad = api.get("/todos", params={"priority": "urgent"})
    assert (bad.status_code, bad.json()["problems"][0]["field"]) == (400, "query.priority")
