"""The adapters check events with the one shared contract check (whale.schemas.SchemaCheck): an
unregistered type, a bad ``format`` or an unknown ``dataschema`` version is a 422 naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from whale_adapters.app import Components, build_app
from whale_adapters.config import parse_adapters
from whale_adapters.ingest import IngestWriter
from whale_adapters.settings import Settings
from whale_adapters.validation import EventValidator
from whale_adapters.webhook import Webhook, sign

from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.schemas import SchemaCheck
from whale.testing import FakeProducer, capture_events

from .fakes import DictSchemas

SCHEMAS = DictSchemas({"shop.order.paid": {"type": "object", "properties": {"day": {"format": "date"}}}})


def client(producer: FakeProducer, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("TEST_VALIDATION_SECRET", "k")
    config = {
        "name": "shop",
        "secret_env": "TEST_VALIDATION_SECRET",
        "source": "/shop",
        "type": "shop.order.{{ body.status }}",
    }
    hook = parse_adapters({"webhooks": [config]}).webhooks[0]
    parts = Components(IngestWriter(producer, EventValidator(SCHEMAS)), {"shop": Webhook(hook)})  # type: ignore[arg-type]
    return TestClient(build_app(Settings(alertmanager_token="tok"), parts))


def post(client: TestClient, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    return client.post(
        "/webhooks/shop", content=raw, headers={"X-Whale-Signature": "sha256=" + sign(b"k", raw)}
    )


def test_a_webhook_of_an_unregistered_type_is_refused_naming_the_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = FakeProducer()
    answer = post(client(producer, monkeypatch), {"status": "refunded"})
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "type"
    assert "'shop.order.refunded' is not registered" in answer.json()["message"]
    assert producer.sent == []


def test_a_bad_format_is_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    web = client(producer, monkeypatch)
    answer = post(web, {"status": "paid", "day": "2026-13-01"})
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        {"field": "data.day", "pointer": "/day", "message": "'2026-13-01' is not a 'date'"}
    ]
    assert post(web, {"status": "paid", "day": "2026-12-01"}).status_code == 202
    assert len(producer.sent) == 1


def test_the_validator_answers_what_the_shared_check_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [{"field": "data.marker", "message": "found by the shared check"}]
    monkeypatch.setattr(SchemaCheck, "problems", lambda self, event: found)
    producer = FakeProducer()
    with capture_events(producer) as written:
        answer = post(client(producer, monkeypatch), {"status": "paid"})
    assert answer.status_code == 422
    assert answer.json()["problems"] == found
    assert written == []


def test_an_unknown_dataschema_version_is_refused() -> None:
    event = CloudEvent.create(
        type="shop.order.paid",
        source="/shop",
        data={},
        dataschema="http://ec/schemas/shop.order.paid/versions/7",
    )
    with pytest.raises(EventError) as info:
        EventValidator(SCHEMAS).validate(event)
    assert info.value.status == 422 and info.value.field == "dataschema"
