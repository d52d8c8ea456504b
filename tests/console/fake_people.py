"""The people-in-the-loop part of :class:`~tests.console.fake_api.FakeApi`: approvals, runs, dead
letters and replays, with the answers (and refusals) the event center gives (README "People in the
loop")."""

from __future__ import annotations

import json
from typing import Any

import httpx


def error(status: int, message: str, problems: list[dict[str, str]] | None = None) -> httpx.Response:
    body = {"error": "x", "message": message, "problems": problems or [], "retryable": False}
    return httpx.Response(status, json=body)


TRIGGER = {
    "request": {"kind": "event", "event": {"id": "a1", "source": "whale/rules", "type": "whale.action.requested"}},
    "event": {
        "kind": "event",
        "event": {"id": "e1", "source": "urn:test/backup", "type": "backup.failed", "subject": "db-01",
                  "correlationid": "c1"},
    },
}  # fmt: skip


class FakePeople:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.approvals: dict[str, dict[str, Any]] = {
            "r1.gate": self.approval("r1.gate", None, None),
            "r1.why": self.approval(
                "r1.why",
                {"role": "admin", "people": ["otto"]},
                {
                    "type": "object",
                    "required": ["reason"],
                    "properties": {
                        "reason": {"type": "string", "title": "Reason"},
                        "hosts": {"type": "integer"},
                        "urgent": {"type": "boolean"},
                        "window": {"type": "string", "enum": ["now", "tonight"]},
                    },
                },
            ),
            "r1.boss": self.approval("r1.boss", {"people": ["the-boss"]}, None),
        }
        self.runs: dict[str, dict[str, Any]] = {
            "r1": {"run_id": "r1", "kind": "workflow", "name": "restart", "pool": "default", "state": "waiting",
                   "started_at": "2026-11-30T10:00:00Z", "finished_at": None, "rule": {"id": "disk", "version": 2},
                   "retry_of": None},
            "r2": {"run_id": "r2", "kind": "workflow", "name": "restart", "pool": "default", "state": "failed",
                   "started_at": "2026-11-30T09:00:00Z", "finished_at": "2026-11-30T09:01:00Z", "rule": "disk",
                   "retry_of": None},
        }  # fmt: skip
        self.letters: list[dict[str, Any]] = [
            {"id": "whale.events-0-7", "kind": "dlq", "reason": "render failed: 'host' is undefined",
             "topic": "whale.events", "partition": 0, "offset": 7, "group": "whale-rule-engine",
             "time": "2026-11-30T10:00:00Z",
             "event": {"id": "e9", "source": "urn:test/x", "type": "disk.full"}},
        ]  # fmt: skip
        self.redriven: set[str] = set()

    @staticmethod
    def approval(id_: str, approvers: Any, schema: Any) -> dict[str, Any]:
        return {"id": id_, "run_id": "r1", "workflow": "restart", "pool": "default", "task": id_.split(".")[1],
                "question": f"Restart db-01 ({id_})?", "requester": {"rule": "disk", "request_id": "a1",
                "source": "whale/rules"}, "since": "2026-11-30T10:00:00Z", "deadline": "2026-11-30T11:00:00Z",
                "approvers": approvers, "response_schema": schema, "status": "pending", "answer": None}  # fmt: skip

    def detail(self, run: dict[str, Any]) -> dict[str, Any]:
        tasks = {
            "check": {"status": "succeeded", "attempt": 1, "started_at": "t0", "finished_at": "t1",
                      "duration_ms": 120, "output": {"free": "3%"}, "error": None},
            "gate": {"status": "waiting" if run["state"] == "waiting" else "failed", "attempt": 1,
                     "started_at": "t1", "finished_at": None, "duration_ms": None, "output": None,
                     "error": None if run["state"] == "waiting" else {"message": "ssh refused"}},
        }  # fmt: skip
        return {**run, "request_id": "a1", "requested_by": "whale/rules", "idempotency_key": "k",
                "correlationid": "c1", "input": {"host": "db-01"}, "output": None, "error": None,
                "attempt": None, "cancel_requested": False, "tasks": tasks, "trigger": TRIGGER}  # fmt: skip

    def route(self, request: httpx.Request, path: str, identity: dict[str, Any]) -> httpx.Response | None:
        body: Any = json.loads(request.content) if request.content else {}
        if request.method == "POST":
            self.sent.append((path, body))
        parts = path.strip("/").split("/")
        if path == "/approvals":
            pending = [a for a in self.approvals.values() if a["status"] == "pending"]
            return httpx.Response(200, json={"approvals": pending, "total": len(pending)})
        if parts[0] == "approvals" and len(parts) == 2:
            return self.answer(request, parts[1], body, identity)
        if path == "/runs":
            runs = list(self.runs.values())
            state = request.url.params.get("state", "all")
            if state == "active":
                runs = [r for r in runs if r["state"] in ("running", "waiting", "paused")]
            elif state != "all":
                runs = [r for r in runs if r["state"] == state]
            return httpx.Response(200, json={"runs": runs, "total": len(runs), "offset": 0})
        if parts[0] == "runs" and len(parts) >= 2:
            run = self.runs.get(parts[1])
            if run is None:
                return error(404, f"no run {parts[1]!r} is recorded")
            if len(parts) == 2:
                return httpx.Response(200, json=self.detail(run))
            return self.control(run, parts[2])
        if path == "/dlq":
            return httpx.Response(200, json={"dead_letters": self.letters, "next": None})
        if path == "/dlq/redrive":
            return self.redrive([x["id"] for x in self.letters])
        if parts[0] == "dlq" and len(parts) == 3:
            if parts[1] not in {x["id"] for x in self.letters}:
                return error(404, f"no dead letter {parts[1]!r} is indexed")
            if parts[1] in self.redriven:
                return error(409, f"dead letter {parts[1]!r} was redriven already")
            self.redriven.add(parts[1])
            return httpx.Response(
                202, json={"id": parts[1], "event_id": f"redrive-{parts[1]}", "topic": "whale.ingest"}
            )
        if path == "/replays":
            return httpx.Response(202, json={"replay_id": "replay-1", "mode": body["mode"], "replayed": 1,
                                             "more": False, "events": [{"original": "e1", "id": "replay-1-x",
                                                                        "type": "backup.failed"}]})  # fmt: skip
        return None

    def answer(self, request: httpx.Request, id_: str, body: Any, identity: dict[str, Any]) -> httpx.Response:
        item = self.approvals.get(id_)
        if item is None:
            return error(404, f"no approval {id_!r}")
        if request.method == "GET":
            return httpx.Response(200, json=item)
        if item["status"] != "pending":
            return error(409, f"approval {id_!r} is {item['status']}, not pending")
        approvers = item["approvers"] or {}
        if approvers and identity["name"] not in approvers.get("people", []):
            return error(403, f"{identity['name']!r} may not answer this approval")
        schema = item["response_schema"]
        if schema and not (isinstance(body.get("response"), dict) and body["response"].get("reason")):
            return error(400, "the response does not match the approval's schema: 'reason' is a required property",
                         [{"field": "response", "message": "'reason' is a required property"}])  # fmt: skip
        if schema and not isinstance(body["response"].get("hosts", 0), int):
            return error(
                400, "bad hosts", [{"field": "response.hosts", "message": "'x' is not of type 'integer'"}]
            )
        item["status"] = "approved" if body["decision"] == "approve" else "denied"
        return httpx.Response(202, json={"id": id_, "decision": body["decision"], "event_id": "ev",
                                         "answered_by": identity})  # fmt: skip

    def control(self, run: dict[str, Any], op: str) -> httpx.Response:
        if op == "retry":
            if run["state"] != "failed":
                return error(409, f"run {run['run_id']!r} is {run['state']}")
            return httpx.Response(202, json={"run_id": "r3", "retry_of": run["run_id"], "request_id": "a3",
                                             "status": "requested"})  # fmt: skip
        if run["state"] not in ("running", "waiting", "paused"):
            return error(409, f"run {run['run_id']!r} has ended ({run['state']})")
        status = {"cancel": "cancel_requested", "pause": "pause_requested", "resume": "resume_requested"}[op]
        return httpx.Response(202, json={"run_id": run["run_id"], "status": status, "event_id": "ev"})

    def redrive(self, ids: list[str]) -> httpx.Response:
        redriven, skipped = [], []
        for id_ in ids:
            if id_ in self.redriven:
                skipped.append({"id": id_, "why": "redriven already"})
            else:
                self.redriven.add(id_)
                redriven.append({"id": id_, "event_id": f"redrive-{id_}", "topic": "whale.ingest"})
        return httpx.Response(202, json={"redriven": redriven, "skipped": skipped})
