"""The pull SDK's pure parts: type patterns and argument checks (Kafka behaviour is in integration tests)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from whale import sdk
from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.schemas import SchemaCheck
from whale.sdk import _matcher, data_as, subscribe, type_matches
from whale.settings import WhaleSettings
from whale.testing import FakeProducer, FakeView, schema_record


@pytest.mark.parametrize(
    ("types", "type_", "expected"),
    [
        (None, "anything", True),
        ("cmdb.ci.created", "cmdb.ci.created", True),
        ("cmdb.ci.created", "cmdb.ci.updated", False),
        (["cmdb.ci.*"], "cmdb.ci.deleted", True),
        (["cmdb.ci.*", "prometheus.alert.firing"], "prometheus.alert.resolved", False),
    ],
)
def test_types_are_names_or_globs(types: object, type_: str, expected: bool) -> None:
    assert type_matches(_matcher(types), type_) is expected  # type: ignore[arg-type]


def test_a_group_is_required() -> None:
    with pytest.raises(ValueError, match="consumer group"):
        subscribe(WhaleSettings(), group="")


class CI(BaseModel):
    id: str
    owner: str


def test_data_as_gives_typed_data_or_names_the_bad_field() -> None:
    good = CloudEvent.create(type="cmdb.ci.created", source="/t", data={"id": "ci-1", "owner": "ops"})
    assert data_as(good, CI) == CI(id="ci-1", owner="ops")
    bad = CloudEvent.create(type="cmdb.ci.created", source="/t", data={"id": "ci-1"})
    with pytest.raises(EventError) as info:
        data_as(bad, CI)
    assert info.value.problems[0]["field"] == "data.owner"


def test_publish_goes_through_the_shared_contract_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unregistered type or a bad format is refused naming the field; nothing is written."""
    schema = {"type": "object", "properties": {"day": {"type": "string", "format": "date"}}}
    settings = WhaleSettings(kafka_bootstrap="sdk-test:9092")
    producer = FakeProducer()
    monkeypatch.setitem(
        sdk._checks, settings.kafka_bootstrap, SchemaCheck(FakeView({"t.ok": schema_record("t.ok", schema)}))
    )
    monkeypatch.setitem(sdk._producers, settings.kafka_bootstrap, producer)  # type: ignore[arg-type]
    for event, field in [
        (CloudEvent.create(type="t.unknown", source="/s", data={}), "type"),
        (CloudEvent.create(type="t.ok", source="/s", data={"day": "2026-13-01"}), "data.day"),
    ]:
        with pytest.raises(EventError) as info:
            asyncio.run(sdk.publish(event, settings=settings))
        assert info.value.field == field
    assert producer.sent == []
    good = CloudEvent.create(type="t.ok", source="/s", data={"day": "2026-12-01"})
    asyncio.run(sdk.publish(good, settings=settings))
    assert [s.event.id for s in producer.sent] == [good.id]
