"""``whale_event_center_events_total{type}``: the type label comes from a bounded set (registered
types, else ``other``), so senders cannot grow the series."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from whale_event_center import metrics

from tests.metric_names import declared, exported
from whale.metrics import process_registry

from .fakes import TOKEN, Harness, make_harness


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    yield from make_harness()


def type_labels() -> set[str]:
    registry = process_registry(metrics.FAMILIES)
    return {
        sample.labels["type"]
        for family in registry.collect()
        if family.name == "whale_event_center_events"
        for sample in family.samples
        if "type" in sample.labels
    }


def post(harness: Harness, type_: str) -> int:
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "urn:test:alerts/db",
        "type": type_,
        "data": {"host": "db1", "value": 1.0},
    }
    headers = {"content-type": "application/cloudevents+json", "authorization": f"Bearer {TOKEN}"}
    answer = harness.client.post("/events", content=json.dumps(event), headers=headers)
    return int(answer.status_code)


def test_a_flood_of_made_up_types_is_counted_as_other_and_adds_no_series(harness: Harness) -> None:
    assert post(harness, "test.alert") == 202
    before = type_labels()
    assert "test.alert" in before
    for _ in range(300):
        assert post(harness, f"flood.{uuid.uuid4().hex}") == 400  # unregistered type
    after = type_labels()
    assert after <= before | {"other", "unknown"}
    assert not any(label.startswith("flood.") for label in after)


def test_the_event_centers_metrics_show_only_its_own_families(harness: Harness) -> None:
    assert exported(harness.client.get("/metrics").text) == declared(metrics.FAMILIES)
