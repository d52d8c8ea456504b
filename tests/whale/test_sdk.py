"""The pull SDK: type patterns, argument checks, and what it commits when (on a fake consumer; the
real Kafka is in tests/integration/adapters/test_sdk.py)."""

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

from .fakes import FakeConsumer, event_msg, fake_consumers


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


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> list[FakeConsumer]:
    settings = WhaleSettings(kafka_bootstrap="sdk-fake:9092")
    monkeypatch.setitem(sdk._producers, settings.kafka_bootstrap, FakeProducer())  # type: ignore[arg-type]
    return fake_consumers(monkeypatch)


async def made(kafka: list[FakeConsumer]) -> FakeConsumer:
    """The consumer the subscription's loop created (it does so on its own task)."""
    async with asyncio.timeout(5):
        while not kafka:
            await asyncio.sleep(0.001)
    return kafka[0]


async def test_a_body_that_raises_leaves_its_event_and_later_ones_uncommitted_but_commits_the_ones_before(
    kafka: list[FakeConsumer],
) -> None:
    settings = WhaleSettings(kafka_bootstrap="sdk-fake:9092")
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="body failed"):
        async with subscribe(settings, group="g", types=["t.wanted"]) as events:
            (await made(kafka)).arriving = [
                event_msg(0, "t.wanted"),
                event_msg(1, "t.other"),
                event_msg(2, "t.wanted"),
            ]
            async for event in events:
                seen.append(event.data["offset"])
                if len(seen) == 2:
                    raise RuntimeError("body failed")
    assert seen == [0, 2]
    assert kafka[0].commits == [[("t", 0, 2)]]  # offsets 0 (handled) and 1 (another type); not 2
    assert kafka[0].closed


async def test_a_break_after_handling_commits_that_event_and_not_the_next(kafka: list[FakeConsumer]) -> None:
    settings = WhaleSettings(kafka_bootstrap="sdk-fake:9092")
    async with subscribe(settings, group="g") as events:
        (await made(kafka)).arriving = [event_msg(5), event_msg(6)]
        async for event in events:
            assert event.data["offset"] == 5
            break
    assert kafka[0].commits == [[("t", 0, 6)]]


async def test_events_are_committed_once_their_batch_was_handled(kafka: list[FakeConsumer]) -> None:
    settings = WhaleSettings(kafka_bootstrap="sdk-fake:9092")
    seen: list[int] = []
    async with subscribe(settings, group="g") as events:
        (await made(kafka)).arriving = [event_msg(0), event_msg(1)]
        async for event in events:
            seen.append(event.data["offset"])
            if len(seen) == 2:
                assert kafka[0].commits == []  # the second is still in hand
            if len(seen) == 3:
                break
            if len(seen) == 2:
                kafka[0].arriving = [event_msg(2)]
    assert seen == [0, 1, 2]
    assert kafka[0].commits == [[("t", 0, 2)], [("t", 0, 3)]]
