"""``/approvals`` and ``/runs`` over a fake ``whale.executor.state`` view: listing, who may answer,
the response schema, answering twice, cancel and retry requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from whale import topics
from whale.cloudevent import CloudEvent
from whale.testing import FakeView

from .fakes import Harness, bearer, make_harness

RUN = "wf-1111"


def run_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "workflow", "status": "running", "run_id": RUN, "workflow": "host.restart", "pool": "ops",
        "request_id": "req-1", "requested_by": "/whale/rule-engine", "idempotency_key": "k1",
        "target": {"kind": "workflow", "name": "host.restart", "pool": "ops"}, "rule": {"id": "r", "version": 2},
        "input": {"host": "web7"}, "started_at": 1_700_000_000.0, "failures": [], "joins": {},
        "tasks": {
            "check": {"status": "succeeded", "attempt": 1, "output": {"ok": True}, "duration_ms": 5},
            "gate": {
                "status": "waiting", "message": "Restart web7?", "deadline": 1_700_003_600.0,
                "since": "2023-11-14T22:13:20Z", "approvers": {"role": "admin", "people": ["operator-person"]},
                "response_schema": {"type": "object", "required": ["reason"],
                                    "properties": {"reason": {"type": "string", "minLength": 3}}},
            },
        },
    }  # fmt: skip
    record.update(changes)
    return record


def put(view: FakeView, key: str, record: dict[str, Any]) -> None:
    view.records[key] = CloudEvent.create(type="whale.executor.run", source="/t", data=record)


@pytest.fixture
def center() -> Iterator[tuple[Harness, FakeView]]:
    for harness in make_harness():
        view = harness.client.app.state.components.runs  # type: ignore[attr-defined]
        put(view, "ops/k1", run_record())
        yield harness, view


def test_pending_approvals_show_the_run_task_question_requester_and_deadline(
    center: tuple[Harness, FakeView],
) -> None:
    harness, _ = center
    body = harness.client.get("/approvals", headers=bearer("viewer")).json()
    assert body["total"] == 1
    (item,) = body["approvals"]
    assert item["id"] == f"{RUN}.gate" and item["run_id"] == RUN and item["task"] == "gate"
    assert item["question"] == "Restart web7?" and item["deadline"] == "2023-11-14T23:13:20Z"
    assert item["requester"] == {
        "rule": {"id": "r", "version": 2},
        "request_id": "req-1",
        "source": "/whale/rule-engine",
    }
    assert item["status"] == "pending"
    assert harness.client.get(f"/approvals/{RUN}.gate", headers=bearer("viewer")).json() == item
    assert harness.client.get(f"/approvals/{RUN}.nope", headers=bearer("viewer")).status_code == 404


def test_an_answer_is_checked_for_approvers_and_schema_then_written_once(
    center: tuple[Harness, FakeView],
) -> None:
    harness, _ = center
    url = f"/approvals/{RUN}.gate"
    refused = harness.client.post(url, json={"decision": "approve", "response": {"reason": "full"}},
                                  headers=bearer("author"))  # fmt: skip
    assert refused.status_code == 403 and "operator-person" in refused.json()["message"]
    bad = harness.client.post(
        url, json={"decision": "approve", "response": {"reason": "x"}}, headers=bearer("operator")
    )
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "response.reason"
    missing = harness.client.post(url, json={"decision": "maybe"}, headers=bearer("operator"))
    assert missing.status_code in (400, 422)
    ok = harness.client.post(url, json={"decision": "deny", "comment": "no", "response": {"reason": "busy"}},
                             headers=bearer("operator"))  # fmt: skip
    assert ok.status_code == 202, ok.text
    assert ok.json()["answered_by"]["name"] == "operator-person"
    (event,) = [e for e in harness.producer.events(topics.EVENTS) if e.type.startswith("whale.approval.")]
    assert event.type == "whale.approval.denied" and event.subject == RUN
    assert event.data["answered_by"]["role"] == "operator" and event.data["response"] == {"reason": "busy"}
    assert event.data["by"] == "operator-person" and event.data["task"] == "gate"
    again = harness.client.post(
        url, json={"decision": "approve", "response": {"reason": "ok!"}}, headers=bearer("admin")
    )
    assert again.status_code == 409
    assert harness.client.get("/approvals", headers=bearer("viewer")).json()["total"] == 0


def test_an_answer_the_executor_recorded_is_shown_and_refused_again(center: tuple[Harness, FakeView]) -> None:
    harness, view = center
    put(view, f"ops/approval/{RUN}/gate", {"kind": "approval", "run_id": RUN, "task": "gate", "approved": True,
                                           "by": "ann", "comment": "", "response": {"reason": "yes"}})  # fmt: skip
    shown = harness.client.get(f"/approvals/{RUN}.gate", headers=bearer("viewer")).json()
    assert shown["status"] == "approved" and shown["answer"]["by"] == "ann"
    again = harness.client.post(
        f"/approvals/{RUN}.gate", json={"decision": "approve"}, headers=bearer("admin")
    )
    assert again.status_code == 409


def test_runs_list_and_show_tasks_with_their_state(center: tuple[Harness, FakeView]) -> None:
    harness, _ = center
    body = harness.client.get("/runs", headers=bearer("viewer")).json()
    assert (
        body["total"] == 1
        and body["runs"][0]["state"] == "waiting"
        and body["runs"][0]["name"] == "host.restart"
    )
    assert harness.client.get("/runs?state=failed", headers=bearer("viewer")).json()["total"] == 0
    detail = harness.client.get(f"/runs/{RUN}", headers=bearer("viewer")).json()
    assert detail["tasks"]["check"]["status"] == "succeeded" and detail["input"] == {"host": "web7"}
    assert detail["trigger"] is None  # not indexed
    assert harness.client.get("/runs/wf-none", headers=bearer("viewer")).status_code == 404


def test_cancel_writes_a_request_keyed_by_the_run_and_retry_only_takes_failed_workflow_runs(
    center: tuple[Harness, FakeView],
) -> None:
    harness, view = center
    assert harness.client.post(f"/runs/{RUN}/retry", headers=bearer("operator")).status_code == 409
    answer = harness.client.post(f"/runs/{RUN}/cancel", json={"comment": "wrong"}, headers=bearer("operator"))
    assert answer.status_code == 202
    (event,) = [e for e in harness.producer.events(topics.EVENTS) if e.type.startswith("whale.run.")]
    assert (
        event.type == "whale.run.cancel.requested" and event.data["answered_by"]["name"] == "operator-person"
    )
    result = {
        "type": "whale.workflow.failed",
        "time": "2023-11-14T22:20:00Z",
        "data": {"error": {"message": "x"}},
    }
    put(view, "ops/k1", run_record(status="finished", result_event=result))
    assert harness.client.post(f"/runs/{RUN}/cancel", json={}, headers=bearer("operator")).status_code == 409
    retried = harness.client.post(f"/runs/{RUN}/retry", headers=bearer("operator"))
    assert retried.status_code == 202 and retried.json()["retry_of"] == RUN
    (request,) = harness.producer.events(topics.actions_topic("ops"))
    assert request.data["retry_of"] == RUN and request.data["params"] == {"host": "web7"}
    assert request.data["target"]["name"] == "host.restart"


def test_a_paused_run_is_shown_paused_and_only_workflow_runs_pause(center: tuple[Harness, FakeView]) -> None:
    harness, view = center
    answer = harness.client.post(f"/runs/{RUN}/pause", json={}, headers=bearer("operator"))
    assert answer.status_code == 202 and answer.json()["status"] == "pause_requested"
    put(view, f"ops/pause/{RUN}", {"kind": "pause", "run_id": RUN, "paused": True})
    assert harness.client.get(f"/runs/{RUN}", headers=bearer("viewer")).json()["state"] == "paused"
    assert harness.client.get("/runs?state=active", headers=bearer("viewer")).json()["total"] == 1
    resumed = harness.client.post(f"/runs/{RUN}/resume", json={}, headers=bearer("operator"))
    assert resumed.status_code == 202 and resumed.json()["status"] == "resume_requested"
    put(view, "ops/k2", {"kind": "action", "run_id": "act-1", "pool": "ops", "status": "started"})
    assert harness.client.post("/runs/act-1/pause", json={}, headers=bearer("operator")).status_code == 409
