"""Grants by type, approvals from people, personal tokens over the API, subscription limits, audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from whale_event_center.auth import Sender
from whale_event_center.errors import Forbidden

from whale import topics

from .fakes import TOKEN, Harness, bearer, make_harness

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


@pytest.fixture
def center() -> Iterator[Harness]:
    yield from make_harness(push_hosts=["*.example.com", "hooks.internal"])


def audits(h: Harness, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in h.producer.events(topics.EVENTS) if e.type == f"whale.audit.{kind}"]


def approval(by: str = "mallory") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "a-1",
        "source": "urn:test:chat",
        "type": "whale.approval.granted",
        "subject": "run-1",
        "data": {"run_id": "run-1", "task": "restart", "by": by},
    }


def post(h: Harness, doc: dict[str, Any], auth: dict[str, str]) -> Any:
    headers = {"content-type": "application/cloudevents+json", **auth}
    return h.client.post("/events", content=json.dumps(doc), headers=headers)


def register_approvals(h: Harness) -> None:
    schema = json.loads((SCHEMAS / "whale.approval.granted.json").read_text())
    assert h.client.put("/schemas/whale.approval.granted", json=schema).status_code == 200


def test_sender_type_grants_are_globs_and_whale_types_are_reserved() -> None:
    sender = Sender(name="am", sources=("*",), types=("prometheus.alert.*",))
    sender.check_type("prometheus.alert.firing")
    with pytest.raises(Forbidden, match=r"granted: prometheus\.alert"):
        sender.check_type("shop.order.paid")
    anything = Sender(name="any", sources=("*",))
    with pytest.raises(Forbidden, match="reserved"):
        anything.check_type("whale.rule.saved")
    service = Sender(name="executor", sources=("*",), types=("whale.workflow.*",), whale_service=True)
    service.check_type("whale.workflow.completed")
    with pytest.raises(Forbidden, match="operator"):
        service.check_type("whale.approval.granted")


def test_a_sender_token_cannot_approve(center: Harness) -> None:
    register_approvals(center)
    doc = {**approval(), "source": "urn:test:alerts/chat"}
    response = post(center, doc, {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 403, response.text
    assert "person holding the operator role" in response.json()["message"]
    assert response.json()["problems"][0]["field"] == "type"


def test_an_operator_approves_and_the_approval_records_who(center: Harness) -> None:
    register_approvals(center)
    assert post(center, approval(), bearer("viewer")).status_code == 403
    response = post(center, approval(by="mallory"), bearer("operator"))
    assert response.status_code == 202, response.text
    (sent,) = center.producer.events(topics.INGEST)
    assert sent.data["by"] == "operator-person"
    assert sent.data["by_identity"]["role"] == "operator"


def test_a_person_cannot_publish_reserved_types(center: Harness) -> None:
    doc = {**approval(), "type": "whale.rule.saved"}
    response = post(center, doc, bearer("admin"))
    assert response.status_code == 403 and "reserved" in response.json()["message"]


def test_tokens_are_created_used_and_revoked_through_the_api(center: Harness) -> None:
    assert center.client.get("/tokens", headers=bearer("author")).status_code == 403
    made = center.client.post("/tokens", json={"name": "carol", "role": "viewer", "ttl_days": 1})
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]
    assert "sha256" not in made.json()
    mine = {"Authorization": f"Bearer {token}"}
    assert center.client.get("/rules", headers=mine).status_code == 200
    assert center.client.put("/rules/r1", json={}, headers=mine).status_code == 403
    listed = center.client.get("/tokens").json()["tokens"]
    assert any(t["id"] == token_id and t["name"] == "carol" for t in listed)
    assert all("sha256" not in t for t in listed)
    assert center.client.delete(f"/tokens/{token_id}").status_code == 204
    refused = center.client.get("/rules", headers=mine)
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    created, revoked = audits(center, "token.created"), audits(center, "token.revoked")
    assert created[0]["actor"]["name"] == "admin-person" and created[0]["after"]["name"] == "carol"
    assert revoked[0]["after"]["revoked"] is True and token not in json.dumps(created + revoked)


def test_subscriptions_read_only_topics_the_author_may_read_and_push_to_allowed_hosts(
    center: Harness,
) -> None:
    internal = {"endpoint": "https://a.example.com/x", "topics": ["whale.executor.state"]}
    refused = center.client.put("/subscriptions/leak", json=internal, headers=bearer("author"))
    assert refused.status_code == 403 and refused.json()["problems"][0]["field"] == "topics"
    assert center.client.put("/subscriptions/leak", json=internal).status_code == 201  # admin
    elsewhere = {"endpoint": "https://evil.test/x"}
    refused = center.client.put("/subscriptions/out", json=elsewhere, headers=bearer("author"))
    assert refused.status_code == 403 and "allowed push hosts" in refused.json()["message"]
    fine = {"endpoint": "http://hooks.internal/x", "headers": {"Authorization": "Bearer s3cret"}}
    assert center.client.put("/subscriptions/ok", json=fine, headers=bearer("author")).status_code == 201
    (saved,) = [a for a in audits(center, "subscription.saved") if a["object"]["id"] == "ok"]
    assert saved["actor"]["name"] == "author-person"
    assert saved["after"]["headers"]["Authorization"] == "***"
    assert "s3cret" not in json.dumps(audits(center, "subscription.saved"))


def test_forcing_an_incompatible_schema_needs_admin_and_is_audited(center: Harness) -> None:
    narrower = {"type": "object", "required": ["host", "value", "new"]}
    forced = center.client.put("/schemas/test.alert?force=true", json=narrower, headers=bearer("author"))
    assert forced.status_code == 403 and "admin" in forced.json()["message"]
    assert center.client.put("/schemas/test.alert?force=true", json=narrower).status_code == 200
    registered = audits(center, "schema.registered")
    assert [a["object"]["id"] for a in registered] == ["test.alert", "test.alert"]
    assert registered[-1]["before"]["version"] == 1 and registered[-1]["after"]["version"] == 2


def test_todo_changes_are_audited_with_the_signed_in_name(center: Harness) -> None:
    opened = center.client.post("/todos", json={"title": "disk"}, headers=bearer("operator"))
    assert opened.status_code in (201, 202), opened.text
    (audit,) = audits(center, "todo.opened")
    assert audit["actor"] == {"name": "operator-person", "kind": "person", "role": "operator", "via": "token"}


def test_a_token_created_with_the_delegate_grant_acts_for_a_person_with_their_role(center: Harness) -> None:
    body = {
        "name": "chat-relay",
        "role": "operator",
        "kind": "service",
        "grants": ["delegate"],
        "ttl_days": 1,
    }
    made = center.client.post("/tokens", json=body)
    assert made.status_code == 201 and made.json()["grants"] == ["delegate"], made.text
    relay = {"Authorization": f"Bearer {made.json()['token']}"}
    assert (
        center.client.get("/rules", headers={**relay, "X-Whale-On-Behalf-Of": "viewer-person"}).status_code
        == 200
    )
    as_viewer = center.client.post(
        "/todos", json={"title": "x"}, headers={**relay, "X-Whale-On-Behalf-Of": "viewer-person"}
    )
    assert as_viewer.status_code == 403 and "viewer" in as_viewer.json()["message"]
    borrowed = center.client.get(
        "/rules", headers={**bearer("admin"), "X-Whale-On-Behalf-Of": "viewer-person"}
    )
    assert borrowed.status_code == 403 and "delegate" in borrowed.json()["message"]
    bad = center.client.post("/tokens", json={**body, "grants": ["root"]})
    assert bad.status_code == 400
