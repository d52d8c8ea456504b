"""The /rules router: validation with precise problems, versions, If-Match, delete (fakes for Kafka)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import rules_api

from whale import authz, topics
from whale.binding import from_kafka
from whale.cloudevent import CloudEvent
from whale.testing import FakeProducer, FakeView
from whale.web.errors import install_error_handlers

from .fakes import AuditStore, stored

CATALOG = FakeView(
    {
        "ops": CloudEvent.create(
            type="whale.catalog.published",
            source="whale/executor/ops",
            data={
                "pool": "ops",
                "actions": [
                    {
                        "name": "ticket",
                        "kind": "python",
                        "description": "",
                        "idempotent": True,
                        "params_schema": {
                            "type": "object",
                            "required": ["title"],
                            "properties": {"title": {"type": "string"}},
                        },
                    }
                ],
                "workflows": [],
            },
        )
    }
)


def rules_client(rules_dir: Path | None = None) -> tuple[TestClient, FakeProducer]:
    rules = FakeView()
    producer = FakeProducer(views={topics.RULES: rules})
    app = FastAPI()
    install_error_handlers(app)

    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    store = AuditStore(producer)
    rules_api.install(app, producer, rules, CATALOG, FakeView(), store=store, rules_dir=rules_dir)  # type: ignore[arg-type]
    return TestClient(app), producer


@pytest.fixture
def client() -> tuple[TestClient, FakeProducer]:
    return rules_client()


RULE: dict[str, Any] = {
    "match": {"field": "type", "equals": "alert.fired"},
    "target": {"kind": "action", "name": "ticket", "pool": "ops"},
    "params": {"title": "{{ data.host }}"},
}


def test_put_creates_version_1_then_increments(client: tuple[TestClient, FakeProducer]) -> None:
    """PUT validates, writes a whale.rule.saved record keyed by id, and numbers versions."""
    http, producer = client
    first = http.put("/rules/r1", json=RULE)
    assert first.status_code == 201 and first.json()["rule"]["version"] == 1
    assert first.headers["etag"] == '"1"'
    topic, message = stored(producer)[0]
    assert topic == "whale.rules" and message.key == b"r1"
    assert from_kafka(message).type == "whale.rule.saved"
    second = http.put("/rules/r1", json={**RULE, "version": 99, "enabled": False})
    assert second.status_code == 200 and second.json()["rule"]["version"] == 2
    assert http.get("/rules/r1").json()["enabled"] is False
    assert [r["id"] for r in http.get("/rules").json()["rules"]] == ["r1"]


def test_invalid_rules_are_refused_with_problems(client: tuple[TestClient, FakeProducer]) -> None:
    """400 lists every problem with its field; nothing is written."""
    http, producer = client
    bad = {
        **RULE,
        "match": {"field": "x", "regex": "("},
        "target": {"kind": "action", "name": "nope", "pool": "ops"},
    }
    answer = http.put("/rules/r2", json=bad)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_rule"
    fields = {p["field"] for p in body["problems"]}
    assert {"match.regex", "target.name"} <= fields
    assert http.put("/rules/r2", json={**RULE, "id": "other"}).json()["problems"][0]["field"] == "id"
    assert not producer.records


def test_unknown_pool_is_saved_with_a_warning(client: tuple[TestClient, FakeProducer]) -> None:
    """A pool without a published catalogue is accepted, with a warning in the answer."""
    http, _ = client
    answer = http.put("/rules/r3", json={**RULE, "target": {"kind": "action", "name": "x", "pool": "later"}})
    assert answer.status_code == 201 and "no catalogue" in answer.json()["warnings"][0]


def test_if_match_guards_concurrent_edits(client: tuple[TestClient, FakeProducer]) -> None:
    """A save or delete naming a stale version gets 412."""
    http, _ = client
    http.put("/rules/r4", json=RULE)
    assert http.put("/rules/r4", json=RULE, headers={"If-Match": '"7"'}).status_code == 412
    assert http.put("/rules/r4", json=RULE, headers={"If-Match": '"1"'}).status_code == 200
    assert http.delete("/rules/r4", headers={"If-Match": "1"}).status_code == 412


def test_delete_writes_a_tombstone(client: tuple[TestClient, FakeProducer]) -> None:
    """DELETE writes a tombstone; the rule is gone; deleting again is 404."""
    http, producer = client
    http.put("/rules/r5", json=RULE)
    assert http.delete("/rules/r5").status_code == 204
    assert stored(producer)[-1][1].value is None
    assert http.get("/rules/r5").status_code == 404
    assert http.delete("/rules/r5").status_code == 404


def test_validate_endpoint_does_not_save(client: tuple[TestClient, FakeProducer]) -> None:
    """POST /rules/validate answers without writing."""
    http, producer = client
    answer = http.post("/rules/validate", json={**RULE, "id": "x"})
    assert answer.status_code == 200 and answer.json()["valid"] is True
    assert not producer.records


def test_a_regex_that_needs_backtracking_is_refused_with_400_naming_the_field(
    client: tuple[TestClient, FakeProducer],
) -> None:
    """Rule regexes and template regex patterns run on RE2: a backreference or lookaround is a 400."""
    http, producer = client
    bad = {
        **RULE,
        "match": {"all": [{"field": "type", "equals": "x"}, {"field": "data.a", "regex": "(a)\\1"}]},
        "params": {"t": "{{ data.a | regex_replace('(?=a)', '-') }}"},
    }
    answer = http.put("/rules/r3", json=bad)
    assert answer.status_code == 400
    problems = {p["field"]: p["message"] for p in answer.json()["problems"]}
    assert "backreferences are not supported" in problems["match.all[1].regex"]
    assert "lookahead and lookbehind are not supported" in problems["params.t"]
    assert not producer.records


def test_the_listing_includes_directory_rules_with_their_origin(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "id: from-file\nmatch: {field: type, equals: x}\ntarget: {kind: action, name: ticket, pool: ops}\n"
        "params: {title: t}\n---\nid: r1\nmatch: {field: type, equals: y}\n"
        "target: {kind: action, name: ticket, pool: ops}\nparams: {title: t}\n"
    )
    http, _ = rules_client(tmp_path)
    assert http.put("/rules/r1", json=RULE).status_code == 201
    listed = {r["id"]: r for r in http.get("/rules").json()["rules"]}
    assert listed["from-file"]["origin"] == "directory"
    assert listed["from-file"]["file"] == f"{tmp_path / 'a.yaml'}#0"
    assert listed["r1"]["origin"] == "topic" and listed["r1"]["overrides"] == f"{tmp_path / 'a.yaml'}#1"
    assert listed["r1"]["version"] == 1  # the saved rule wins
