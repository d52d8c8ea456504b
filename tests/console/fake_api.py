"""A small stand-in for the event center's HTTP API (httpx.MockTransport) for the console's unit tests.

It keeps to-dos, rules and events in dicts and checks the bearer token's role as the real API does
(401 unknown, 403 below the route's role); the real API is exercised by tests/integration/console.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import httpx

from .fake_people import FakePeople

TOKENS = {
    "wht_v.viewer": {"name": "vera", "kind": "person", "role": "viewer", "via": "token"},
    "wht_o.operator": {"name": "otto", "kind": "person", "role": "operator", "via": "token"},
    "wht_a.author": {"name": "ada", "kind": "person", "role": "author", "via": "token"},
}
LEVEL = {"viewer": 1, "operator": 2, "author": 3, "admin": 4}
EVENT = {
    "specversion": "1.0",
    "id": "e1",
    "source": "urn:test/backup",
    "type": "backup.failed",
    "subject": "db-01",
    "time": "2026-11-30T10:00:00Z",
    "correlationid": "c1",
    "data": {"job": "nightly", "status": "failed"},
}


def error(status: int, message: str, problems: list[dict[str, str]] | None = None) -> httpx.Response:
    body = {"error": "x", "message": message, "problems": problems or [], "retryable": False}
    return httpx.Response(status, json=body)


class FakeApi:
    def __init__(self, *, dev_mode: bool = False) -> None:
        self.dev_mode = dev_mode
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.people = FakePeople()
        self.runs_requested: list[tuple[str, dict[str, Any]]] = []
        self.todos: dict[str, dict[str, Any]] = {
            "t1": {
                "id": "t1",
                "status": "open",
                "title": "backup.failed on db-01",
                "type": "backup.failed",
                "count": 2,
                "claimed_by": None,
                "correlationid": "c1",
                "updated_at": "2026-11-30T10:00:01Z",
                "comments": [],
                "details": {"job": "nightly"},
                "first_event": {"source": "urn:test/backup", "id": "e1", "time": "2026-11-30T10:00:00Z"},
            }
        }
        self.rules: dict[str, dict[str, Any]] = {
            "disk": {
                "id": "disk",
                "version": 2,
                "enabled": True,
                "match": {"field": "type", "equals": "disk.full"},
                "target": {"kind": "action", "name": "core.log"},
                "origin": "topic",  # what GET /rules adds to each rule
            }
        }
        self.events = [
            {
                "kind": "event",
                "event": EVENT,
                "topic": "whale.events",
                "partition": 0,
                "offset": 1,
                "time": EVENT["time"],
            }
        ]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def who(self, request: httpx.Request) -> dict[str, Any] | None:
        if self.dev_mode:
            return {"name": "dev-mode", "kind": "person", "role": "admin", "via": "dev"}
        auth = request.headers.get("authorization", "")
        return TOKENS.get(auth.removeprefix("Bearer "))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        self.calls.append((request.method, path, dict(request.headers)))
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        identity = self.who(request)
        if identity is None:
            return error(401, "unknown token")
        needed = "viewer"
        if request.method == "POST" and path.startswith(
            ("/todos/", "/approvals/", "/runs/", "/dlq/", "/replays", "/actions/")
        ):
            needed = "operator"
        subscription = path.startswith("/subscriptions/") and path.endswith(("/pause", "/resume"))
        if request.method in ("PUT", "DELETE") or subscription:
            needed = "author"
        if LEVEL[identity["role"]] < LEVEL[needed]:
            return error(403, f"{identity['name']} has role {identity['role']}; this needs {needed}")
        return self.route(request, path, identity)

    def route(self, request: httpx.Request, path: str, identity: dict[str, Any]) -> httpx.Response:
        if path == "/whoami":
            return httpx.Response(200, json=identity)
        if path == "/todos":
            items = list(self.todos.values())
            return httpx.Response(200, json={"todos": items, "total": len(items), "offset": 0})
        if path.startswith("/todos/"):
            parts = path.split("/")
            item = self.todos.get(parts[2])
            if item is None:
                return error(404, f"no to-do {parts[2]!r}")
            if request.method == "GET":
                return httpx.Response(200, json=item)
            body = json.loads(request.content)
            op = parts[3]
            if op == "claim":
                item.update(status="claimed", claimed_by=identity["name"])
            elif op == "resolve":
                item.update(status="resolved", resolved_by=identity["name"], resolution=body.get("comment"))
            elif op == "comment":
                item["comments"].append({"by": identity["name"], "text": body["comment"], "at": "now"})
            return httpx.Response(200, json=item)
        if path == "/rules":
            return httpx.Response(200, json={"rules": list(self.rules.values())})
        if path.startswith("/rules/") and path.endswith("/versions"):
            return httpx.Response(
                200,
                json={
                    "rule_id": "disk",
                    "versions": [{"version": 2, "time": "t", "actor": {"name": "ada"}, "action": "saved"}],
                },
            )
        if path == "/rules/validate" or (path.startswith("/rules/") and request.method == "PUT"):
            doc = json.loads(request.content)
            if "target" not in doc:
                return error(
                    400,
                    "invalid rule: target: Field required",
                    [{"field": "target", "message": "Field required"}],
                )
            if request.method == "PUT":
                current = self.rules.get(doc["id"])
                if current and request.headers.get("if-match") not in (None, str(current["version"])):
                    return error(412, f"rule {doc['id']!r} is at version {current['version']}")
                doc["version"] = (current or {"version": 0})["version"] + 1
                self.rules[doc["id"]] = doc
            return httpx.Response(200, json={"rule": doc, "warnings": []})
        if path == "/events":  # newest first as stored here; "after" is an offset
            size, start = int(request.url.params.get("size", 50)), int(request.url.params.get("after", 0))
            more = start + size < len(self.events)
            page = {"events": self.events[start : start + size], "next": str(start + size) if more else None}
            return httpx.Response(200, json=page)
        if path.startswith("/events/"):
            return (
                httpx.Response(200, json=self.events[0])
                if path.endswith("/e1")
                else error(404, "no such event")
            )
        if path.startswith("/traces/"):
            return self.trace()
        if path.startswith("/actions/") and path.endswith("/run"):
            return self.run_action(path.split("/")[2], json.loads(request.content))
        if path == "/schemas":
            return httpx.Response(
                200, json={"types": [{"type": "backup.failed", "latest": 1, "versions": [1]}]}
            )
        if path == "/subscriptions":
            return httpx.Response(200, json={"subscriptions": []})
        found = self.people.route(request, path, identity)
        return found if found is not None else error(404, "not found")

    def run_action(self, name: str, body: dict[str, Any]) -> httpx.Response:
        """``POST /actions/{name}/run`` as README "Running a catalogued action" says."""
        self.runs_requested.append((name, body))
        if name != "disk.clean":
            return error(404, f"no catalogued action or workflow {name!r}")
        params = body.get("params") or {}
        if "host" not in params:
            problems = [{"field": "params", "message": "does not fit: 'host' is a required property"}]
            return error(400, "disk.clean: params 'host' is a required property", problems)
        if not isinstance(params.get("keep_days", 0), int):
            problems = [
                {"field": "params.keep_days", "message": "does not fit: 'x' is not of type 'integer'"}
            ]
            return error(400, "disk.clean: params.keep_days is not of type 'integer'", problems)
        return httpx.Response(
            202,
            json={
                "request_id": "q1",
                "run_id": "action-abc",
                "target": {"name": name},
                "status": "requested",
            },
        )

    def trace(self) -> httpx.Response:
        def step(
            id_: str, type_: str, cause: str | None, depth: int, second: int, data: Any = None
        ) -> dict[str, Any]:
            event = {
                "id": id_,
                "source": "urn:t",
                "type": type_,
                "time": f"2026-11-30T10:00:0{second}Z",
                "correlationid": "c1",
            }
            if cause:
                event["causationid"] = cause
            if data is not None:
                event["data"] = data
            return {"kind": "event", "event": event, "causationid": cause, "depth": depth}

        steps = [
            step("e1", "prometheus.alert.firing", None, 0, 0),
            step("a1", "whale.action.requested", "e1", 1, 1),
            step(
                "r1",
                "whale.action.failed",
                "a1",
                2,
                3,
                {"status": "failed", "error": {"message": "ssh refused"}},
            ),
        ]
        return httpx.Response(200, json={"correlation_id": "c1", "events": steps})
