"""The adapters with hostile bodies: deep nesting, surrogates and Kafka's size limit are 4xx."""

# ruff: noqa: F811 (the client and producer fixtures come from test_app)

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from whale.cloudevent import CloudEvent
from whale.errors import MessageTooLarge
from whale.event_data import MAX_DEPTH
from whale.testing import FakeProducer

from .payloads import alert, notification
from .test_app import _signed, client, producer  # noqa: F401

AUTH = {"Authorization": "Bearer tok", "Content-Type": "application/json"}


def raw_nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 5_000])
def test_deep_alertmanager_bodies_are_400(client: TestClient, producer: FakeProducer, depth: int) -> None:
    body = json.dumps(notification(alert("fp1")))[:-1] + f', "x": {raw_nested(depth)}}}'
    answer = client.post("/alertmanager", content=body.encode(), headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["problems"][0]["field"] == "body"
    assert producer.sent == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000])
def test_deep_webhook_bodies_are_400(client: TestClient, producer: FakeProducer, depth: int) -> None:
    body = ('{"status": "paid", "id": 1, "x": ' + raw_nested(depth) + "}").encode()
    answer = client.post("/webhooks/shop", content=body, headers=_signed(body))
    assert answer.status_code == 400, answer.text
    assert producer.sent == []


def test_an_alert_label_with_an_unpaired_surrogate_is_400(client: TestClient, producer: FakeProducer) -> None:
    body = json.dumps(notification(alert("fp1"))).replace('"fp1"', '"fp\\ud800"', 1)
    answer = client.post("/alertmanager", content=body.encode(), headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["problems"][0]["pointer"] == "/alerts/0/fingerprint"
    assert producer.sent == []


def test_an_event_too_large_for_kafka_is_413_not_503(client: TestClient, producer: FakeProducer) -> None:
    async def too_large(topic: str, event: CloudEvent, *, key: str | None = None) -> Any:
        raise MessageTooLarge("the record would be about 1000100 bytes", limit=1_000_000)

    producer.send = too_large  # type: ignore[method-assign]
    body = json.dumps({"status": "paid", "id": 1}).encode()
    answer = client.post("/webhooks/shop", content=body, headers=_signed(body))
    assert answer.status_code == 413, answer.text


def test_secret_looking_keys_are_redacted_by_the_adapters(client: TestClient, producer: FakeProducer) -> None:
    body = json.dumps({"status": "paid", "id": 1, "api_key": "k-123"}).encode()
    assert client.post("/webhooks/shop", content=body, headers=_signed(body)).status_code == 202
    written = producer.sent[-1][1]
    assert written.data["api_key"] == "***" and written.extensions["redacted"] == "/api_key"


def test_options_is_405_naming_the_allowed_methods(client: TestClient) -> None:
    response = client.options("/alertmanager")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_the_openapi_document_describes_the_request_bodies(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    alertmanager = paths["/alertmanager"]["post"]
    schema = alertmanager["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["version", "alerts"]
    assert {"400", "413", "422"} <= set(alertmanager["responses"])
    assert "requestBody" in paths["/webhooks/{name}"]["post"]


async def test_an_event_too_large_for_kafka_is_dead_lettered_without_its_data() -> None:
    from whale_adapters.ingest import IngestWriter
    from whale_adapters.validation import EventValidator

    sink = FakeProducer()

    async def too_large(topic: str, event: CloudEvent, *, key: str | None = None) -> Any:
        raise MessageTooLarge("the record would be about 1000100 bytes", limit=1_000_000)

    sink.send = too_large  # type: ignore[method-assign]
    writer = IngestWriter(sink, EventValidator(None))  # type: ignore[arg-type]
    event = CloudEvent.create(type="poll.change", source="/poller", data={"big": "x"})
    assert await writer.publish_or_dead_letter(event, adapter="poller:p") is False
    topic, message = sink.messages[-1]
    assert topic == "whale.dlq" and message.value is None
    assert (message.header_text("whale_dlq_reason") or "").startswith("too large")
