"""The adapters' HTTP app: status codes say what happened (202 = acknowledged by Kafka)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from whale_adapters.app import Components, build_app
from whale_adapters.config import parse_adapters
from whale_adapters.ingest import IngestWriter
from whale_adapters.settings import Settings
from whale_adapters.validation import EventValidator
from whale_adapters.webhook import Webhook, sign

from whale.testing import FakeProducer

from .fakes import DictSchemas
from .payloads import alert, notification

SCHEMAS = DictSchemas(
    {
        "shop.order.paid": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "uptime.check": {},
        "prometheus.alert.firing": {
            "type": "object",
            "properties": {"labels": {"type": "object", "properties": {"instance": {"pattern": "^db"}}}},
        },
    }
)


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def client(producer: FakeProducer, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("TEST_APP_SECRET", "k")
    hook = parse_adapters(
        {
            "webhooks": [
                {
                    "name": "shop",
                    "secret_env": "TEST_APP_SECRET",
                    "source": "/shop",
                    "type": "shop.order.{{ body.status }}",
                }
            ]
        }
    ).webhooks[0]
    settings = Settings(alertmanager_token="tok", alertmanager_source="/am")
    parts = Components(IngestWriter(producer, EventValidator(SCHEMAS)), {"shop": Webhook(hook)})  # type: ignore[arg-type]
    return TestClient(build_app(settings, parts))


def test_alertmanager_needs_the_bearer_token(client: TestClient, producer: FakeProducer) -> None:
    payload = notification(alert("fp1"), alert("fp2"))
    assert client.post("/alertmanager", json=payload).status_code == 401
    answer = client.post("/alertmanager", json=payload, headers={"Authorization": "Bearer tok"})
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 2
    ingested = [e.subject for topic, e, _ in producer.sent if topic == "whale.ingest"]
    assert ingested == ["fp1", "fp2"]
    saved = [key for topic, _, key in producer.sent if topic == "whale.adapters.state"]
    assert saved == ["alert:alertmanager:fp1", "alert:alertmanager:fp2"]  # after the events
    assert [topic for topic, _, _ in producer.sent[:2]] == ["whale.ingest", "whale.ingest"]


def test_an_invalid_alertmanager_payload_is_a_422_naming_the_field(client: TestClient) -> None:
    answer = client.post(
        "/alertmanager", json={"version": "4", "alerts": "no"}, headers={"Authorization": "Bearer tok"}
    )
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "alerts"


def _signed(body: bytes) -> dict[str, str]:
    return {"X-Whale-Signature": "sha256=" + sign(b"k", body), "Content-Type": "application/json"}


def test_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_published(
    client: TestClient, producer: FakeProducer
) -> None:
    body = json.dumps({"status": "paid", "id": 1}).encode()
    answer = client.post("/webhooks/shop", content=body, headers={"X-Whale-Signature": "sha256=00"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"
    assert "does not match" in answer.json()["message"]
    assert producer.sent == []


def test_a_signed_webhook_is_validated_against_the_registered_schema(
    client: TestClient, producer: FakeProducer
) -> None:
    good = json.dumps({"status": "paid", "id": 1}).encode()
    assert client.post("/webhooks/shop", content=good, headers=_signed(good)).status_code == 202
    bad = json.dumps({"status": "paid", "id": "one"}).encode()
    answer = client.post("/webhooks/shop", content=bad, headers=_signed(bad))
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        {"field": "data.id", "pointer": "/id", "message": "'one' is not of type 'integer'"}
    ]
    assert len(producer.sent) == 1


def test_an_unknown_webhook_is_404(client: TestClient) -> None:
    assert client.post("/webhooks/nope", content=b"{}").status_code == 404


def test_one_alert_breaking_the_registered_schema_refuses_the_whole_notification(
    client: TestClient, producer: FakeProducer
) -> None:
    payload = notification(alert("fp1"), alert("fp2", instance="web1:9100"))
    answer = client.post("/alertmanager", json=payload, headers={"Authorization": "Bearer tok"})
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "data.labels.instance"
    assert producer.sent == []


def test_every_refusal_has_the_one_error_body_with_its_code(client: TestClient) -> None:
    auth = {"authorization": "Bearer tok"}
    answers = {
        "missing_token": client.post("/alertmanager", json=notification(alert("f1"))),
        "not_json": client.post("/alertmanager", content=b"{", headers=auth),
        "too_large": client.post("/alertmanager", content=b"x" * (6 * 1024 * 1024), headers=auth),
        "no_webhook": client.post("/webhooks/nope", content=b"{}"),
    }
    codes = {name: (a.status_code, a.json()["error"]) for name, a in answers.items()}
    assert codes == {
        "missing_token": (401, "unauthenticated"),
        "not_json": (400, "invalid_request"),
        "too_large": (413, "too_large"),
        "no_webhook": (404, "not_found"),
    }
    assert all(set(a.json()) == {"error", "message", "problems", "retryable"} for a in answers.values())


def test_a_lifecycle_webhook_records_its_open_episode_once_the_event_is_stored(
    producer: FakeProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_APP_SECRET", "k")
    config = {
        "name": "uptime",
        "secret_env": "TEST_APP_SECRET",
        "source": "/uptime",
        "type": "uptime.check",
        "lifecycle": {"identity": "$.id", "status": "$.state", "resolved": ["up"]},
    }
    hook = Webhook(parse_adapters({"webhooks": [config]}).webhooks[0])
    parts = Components(IngestWriter(producer, EventValidator(SCHEMAS)), {"uptime": hook})  # type: ignore[arg-type]
    client = TestClient(build_app(Settings(alertmanager_token="tok"), parts))
    for state in ("down", "up"):
        body = json.dumps({"id": "web-1", "state": state}).encode()
        headers = {"X-Whale-Signature": "sha256=" + sign(b"k", body)}
        assert client.post("/webhooks/uptime", content=body, headers=headers).status_code == 202
    [fired, resolved] = [e for topic, e, _ in producer.sent if topic == "whale.ingest"]
    assert (fired.extensions["alertstate"], resolved.extensions["alertstate"]) == ("firing", "resolved")
    assert fired.extensions["correlationid"] == resolved.extensions["correlationid"]
    assert [key for topic, _, key in producer.sent if topic == "whale.adapters.state"] == [
        "alert:webhook:uptime:web-1"
    ]
    assert [m.key for topic, m in producer.messages if topic == "whale.adapters.state"] == [
        b"alert:webhook:uptime:web-1"  # the resolution deleted it
    ]
