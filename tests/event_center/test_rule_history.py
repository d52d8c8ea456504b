"""Rule history over the audit trail: versions newest first, one version, diff, rollback (fakes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import rule_history, rules_api
from whale_event_center.errors import Conflict

from whale import authz, topics
from whale.binding import from_kafka
from whale.testing import FakeProducer, FakeView
from whale.web.errors import install_error_handlers

from .fakes import AuditStore
from .test_rules_api import CATALOG, RULE

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


def rules_app() -> tuple[FastAPI, FakeProducer, FakeView]:
    """The /rules router (dev mode) over fakes whose audit events the fake store has indexed."""
    rules = FakeView()
    producer = FakeProducer(views={topics.RULES: rules})
    app = FastAPI()
    install_error_handlers(app)
    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    rules_api.install(app, producer, rules, CATALOG, FakeView(), store=AuditStore(producer))  # type: ignore[arg-type]
    return app, producer, rules


@pytest.fixture
def client() -> tuple[TestClient, FakeProducer, FakeView]:
    app, producer, rules = rules_app()
    return TestClient(app), producer, rules


Client = tuple[TestClient, FakeProducer, FakeView]


def three_saves(http: TestClient) -> None:
    assert http.put("/rules/r1", json=RULE).status_code == 201
    assert http.put("/rules/r1", json={**RULE, "description": "two"}).status_code == 200
    third = {**RULE, "description": "three", "params": {"title": "{{ data.x }}"}, "enabled": False}
    assert http.put("/rules/r1", json=third).status_code == 200


def test_versions_lists_every_save_newest_first_with_actor_and_time(client: Client) -> None:
    http, _, _ = client
    three_saves(http)
    body = http.get("/rules/r1/versions").json()
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    newest = body["versions"][0]
    assert newest["rule"]["description"] == "three" and newest["actor"]["name"] == "dev-mode"
    assert newest["time"] and newest["action"] == "saved"
    one = http.get("/rules/r1/versions/1").json()
    assert one["version"] == 1 and one["rule"]["description"] == ""


def test_unknown_rule_or_version_is_a_404_naming_the_field(client: Client) -> None:
    http, _, _ = client
    missing = http.get("/rules/nope/versions")
    assert missing.status_code == 404 and missing.json()["problems"][0]["field"] == "rule_id"
    three_saves(http)
    gone = http.get("/rules/r1/versions/9")
    assert gone.status_code == 404 and gone.json()["problems"][0]["field"] == "number"
    bad = http.get("/rules/r1/diff", params={"from": 1, "to": 7})
    assert bad.status_code == 404 and bad.json()["problems"][0]["field"] == "to"


def test_diff_lists_changed_paths_with_old_and_new_and_a_unified_yaml_diff(client: Client) -> None:
    http, _, _ = client
    three_saves(http)
    body = http.get("/rules/r1/diff", params={"from": 1, "to": 3}).json()
    changes = {c["path"]: c for c in body["changes"]}
    assert changes["/description"] == {"op": "replace", "path": "/description", "old": "", "new": "three"}
    assert changes["/enabled"]["old"] is True and changes["/enabled"]["new"] is False
    assert changes["/params/title"]["old"] == "{{ data.host }}"
    assert "/version" not in changes
    assert "--- r1@1" in body["unified"] and "+description: three" in body["unified"]
    assert http.get("/rules/r1/diff", params={"from": 2, "to": 2}).json()["changes"] == []


def test_diff_refuses_missing_or_bad_parameters_with_a_400(client: Client) -> None:
    http, _, _ = client
    three_saves(http)
    for params in ({"from": 1}, {"from": "x", "to": 2}, {"from": 0, "to": 2}):
        assert http.get("/rules/r1/diff", params=params).status_code == 400, params


def test_rollback_saves_the_old_document_as_the_next_version_and_audits_it(client: Client) -> None:
    http, producer, rules = client
    three_saves(http)
    done = http.post("/rules/r1/rollback", json={"version": 1})
    assert done.status_code == 200 and done.headers["etag"] == '"4"'
    assert done.json()["rule"]["version"] == 4 and done.json()["rolled_back_from"] == 1
    in_force = rules.get("r1")
    assert in_force is not None and in_force.data["version"] == 4
    v1 = http.get("/rules/r1/versions/1").json()["rule"]
    assert {**in_force.data, "version": 1} == v1
    audit = [from_kafka(m) for t, m in producer.records if t == topics.EVENTS][-1]
    assert audit.type == "whale.audit.rule.rolled_back" and audit.data["rolled_back_from"] == 1
    assert audit.data["before"]["version"] == 3 and audit.data["after"]["version"] == 4
    schema = json.loads((SCHEMAS / "whale.audit.rule.rolled_back.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(audit.data)
    listed = http.get("/rules/r1/versions").json()["versions"]
    assert [v["version"] for v in listed] == [4, 3, 2, 1] and listed[0]["rolled_back_from"] == 1


def test_rollback_refuses_unknown_versions_bad_bodies_and_stale_if_match(client: Client) -> None:
    http, _, _ = client
    three_saves(http)
    assert http.post("/rules/r1/rollback", json={"version": 8}).status_code == 404
    assert http.post("/rules/r1/rollback", json={"version": 0}).status_code == 400
    assert http.post("/rules/r1/rollback", json={"version": 1, "x": 1}).status_code == 400
    stale = http.post("/rules/r1/rollback", json={"version": 1}, headers={"If-Match": "2"})
    assert stale.status_code == 412


def test_history_after_a_delete_shows_the_ended_life_and_a_recreated_rule_starts_anew(
    client: Client,
) -> None:
    http, _, _ = client
    three_saves(http)
    assert http.delete("/rules/r1").status_code == 204
    assert [v["version"] for v in http.get("/rules/r1/versions").json()["versions"]] == [3, 2, 1]
    back = http.post("/rules/r1/rollback", json={"version": 2})
    assert back.status_code == 201 and back.json()["rule"]["version"] == 1
    listed = http.get("/rules/r1/versions").json()["versions"]
    assert [v["version"] for v in listed] == [1] and listed[0]["rule"]["description"] == "two"


def test_the_current_version_is_listed_before_its_audit_event_is_indexed(client: Client) -> None:
    http, producer, _ = client
    three_saves(http)
    producer.records = [
        s for s in producer.records if s[0] != topics.EVENTS or b"three" not in (s[1].value or b"")
    ]
    listed = http.get("/rules/r1/versions").json()["versions"]
    assert [v["version"] for v in listed] == [3, 2, 1] and listed[0]["actor"] is None


def test_a_recreated_rule_whose_saves_are_not_indexed_yet_shows_only_its_current_version(
    client: Client,
) -> None:
    http, producer, _ = client
    three_saves(http)
    assert http.delete("/rules/r1").status_code == 204
    assert http.put("/rules/r1", json={**RULE, "description": "anew"}).status_code == 201
    producer.records = [
        s for s in producer.records if s[0] != topics.EVENTS or b"anew" not in (s[1].value or b"")
    ]
    listed = http.get("/rules/r1/versions").json()["versions"]
    assert [(v["version"], v["rule"]["description"]) for v in listed] == [(1, "anew")]


def test_a_version_whose_secret_was_redacted_cannot_be_restored() -> None:
    with pytest.raises(Conflict) as caught:
        rule_history.restorable({"params": {"headers": [{"api_key": "***"}]}})
    assert caught.value.field == "params.headers[0].api_key"
    rule_history.restorable({"params": {"api_key": "{{ secrets.k }}", "note": "***"}})


def test_changes_escape_pointer_keys_and_report_type_changes() -> None:
    old: dict[str, Any] = {"params": {"a/b": 1, "n": 1}}
    new: dict[str, Any] = {"params": {"a/b": 2, "n": 1.0}}
    paths = [c["path"] for c in rule_history.changes(old, new)]
    assert paths == ["/params/a~1b", "/params/n"]
