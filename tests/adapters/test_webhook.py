"""Generic webhook: HMAC verification and declarative mapping (configuration only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from whale_adapters.config import parse_adapters
from whale_adapters.errors import MappingError, PayloadError, SignatureError
from whale_adapters.webhook import Webhook, sign

from whale.testing import FakeProducer

HOOK = {
    "name": "shop",
    "secret_env": "TEST_SHOP_SECRET",
    "signature_header": "X-Shop-Signature",
    "source": "https://shop.example.com",
    "type": "shop.order.{{ body.order.status }}",
    "id": "$.delivery",
    "subject": "$.order.id",
    "time": "$.at",
    "data": "$.order",
}
BODY = {"delivery": "d-1", "at": "2026-11-23T10:00:00Z", "order": {"id": 42, "status": "paid"}}


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Webhook:
    monkeypatch.setenv("TEST_SHOP_SECRET", "s3cret")
    return Webhook(parse_adapters({"webhooks": [HOOK]}).webhooks[0])


def _headers(body: bytes, secret: bytes = b"s3cret") -> dict[str, str]:
    return {"x-shop-signature": "sha256=" + sign(secret, body)}


def test_a_correctly_signed_body_maps_to_an_event(hook: Webhook) -> None:
    body = json.dumps(BODY).encode()
    hook.verify(body, _headers(body))
    event = hook.to_event(body, _headers(body))
    assert (event.type, event.id, event.subject) == ("shop.order.paid", "d-1", "42")
    assert event.source == "https://shop.example.com"
    assert event.data == {"id": 42, "status": "paid"}
    assert event.time is not None and event.time.year == 2026


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Shop-Signature"),
        ({"x-shop-signature": "md5=abc"}, "must start with 'sha256='"),
        ({"x-shop-signature": "sha256=" + "0" * 64}, "does not match"),
    ],
)
def test_missing_or_wrong_signatures_are_refused(hook: Webhook, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        hook.verify(b"{}", headers)


def test_a_signature_made_with_another_secret_is_refused(hook: Webhook) -> None:
    body = json.dumps(BODY).encode()
    with pytest.raises(SignatureError):
        hook.verify(body, _headers(body, b"other"))


def test_a_missing_mapped_field_names_the_attribute(hook: Webhook) -> None:
    body = json.dumps({"delivery": "d-2", "at": "2026-11-23T10:00:00Z", "order": {"status": "paid"}}).encode()
    with pytest.raises(PayloadError) as info:
        hook.to_event(body, {})
    assert info.value.problems[0]["field"] == "subject"


def test_without_an_id_path_the_id_is_a_hash_of_the_body_so_redeliveries_dedupe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_SHOP_SECRET", "s3cret")
    plain = Webhook(parse_adapters({"webhooks": [{**HOOK, "id": None}]}).webhooks[0])
    body = json.dumps(BODY).encode()
    assert plain.to_event(body, {}).id == plain.to_event(body, {}).id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad Name"}, "webhooks.0.name"),
        ({"type": "{{ body."}, "webhooks.0.type"),
        ({"subject": "order.id"}, "webhooks.0.subject"),
        ({"algorithm": "md5"}, "webhooks.0.algorithm"),
    ],
)
def test_bad_webhook_config_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_adapters({"webhooks": [{**HOOK, **change}]})
    assert info.value.field == field


def test_an_unset_secret_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SHOP_SECRET", raising=False)
    with pytest.raises(MappingError, match="TEST_SHOP_SECRET"):
        Webhook(parse_adapters({"webhooks": [HOOK]}).webhooks[0])


ALERTING = {
    "name": "uptime",
    "secret_env": "TEST_SHOP_SECRET",
    "source": "https://uptime.example.com",
    "type": "uptime.check.{{ body.check.state }}",
    "subject": "$.check.id",
    "data": "$.check",
    "lifecycle": {
        "identity": "$.check.id",
        "status": "$.check.state",
        "resolved": ["up"],
        "content": "$.check.latency",
    },
}


def _check(state: str, latency: int, sent: str = "10:00") -> bytes:
    return json.dumps({"check": {"id": "web-1", "state": state, "latency": latency, "sent": sent}}).encode()


def test_a_webhook_with_a_lifecycle_fires_updates_and_resolves_one_episode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_SHOP_SECRET", "s3cret")
    hook = Webhook(parse_adapters({"webhooks": [ALERTING]}).webhooks[0])
    seen = []
    for body in (
        _check("down", 900),
        _check("down", 900, sent="10:01"),
        _check("down", 2000),
        _check("up", 80),
    ):
        event, identity, step = hook.observe(body, {})
        assert identity == "web-1" and step is not None
        seen.append(event)
        asyncio.run(hook.book.record(FakeProducer(), identity, step))  # type: ignore[arg-type]
    states = [e.extensions["alertstate"] for e in seen]
    assert states == ["firing", "firing", "updated", "resolved"]
    assert seen[0].id == seen[1].id  # only the send time changed: not an update (content is latency)
    assert len({e.extensions["correlationid"] for e in seen}) == 1
    assert seen[3].type == "uptime.check.up"


def test_a_lifecycle_identity_missing_from_the_body_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SHOP_SECRET", "s3cret")
    config = {k: v for k, v in ALERTING.items() if k != "subject"}
    hook = Webhook(parse_adapters({"webhooks": [config]}).webhooks[0])
    with pytest.raises(PayloadError) as info:
        hook.observe(json.dumps({"check": {"state": "down"}}).encode(), {})
    assert info.value.problems[0]["field"] == "lifecycle.identity"
