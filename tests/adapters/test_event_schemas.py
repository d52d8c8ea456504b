"""What the adapters and the dispatcher write conforms to the JSON Schemas in schemas/events/."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from whale_adapters.alertmanager import alert_events, observe
from whale_adapters.lifecycle import AlertBook

from whale.subscriptions import parse_subscriptions
from whale.testing import FakeProducer

from .payloads import alert, notification

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


def _validator(type_: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / f"{type_}.json").read_text()))


def test_alert_events_match_their_schemas() -> None:
    for event in alert_events(
        notification(alert("fp1"), alert("fp2", "resolved"), status="firing"), source="/am"
    ):
        errors = [e.message for e in _validator(event.type).iter_errors(event.data)]
        assert errors == [], event.type


def test_subscription_records_match_their_schema() -> None:
    doc: dict[str, Any] = {
        "subscriptions": [{"id": "s1", "endpoint": "http://x/y", "filter": {"field": "type", "equals": "t"}}]
    }
    record = parse_subscriptions(doc)[0].to_record()
    assert list(_validator(record.type).iter_errors(record.data)) == []


def test_alert_episode_records_match_their_schema() -> None:
    producer = FakeProducer()
    book = AlertBook("alertmanager", "/am")
    [observed] = observe(notification(alert("fp1")), source="/am", book=book)
    asyncio.run(book.record(producer, observed.identity, observed.step))  # type: ignore[arg-type]
    [(_, record, _)] = producer.sent
    assert list(_validator(record.type).iter_errors(record.data)) == []
