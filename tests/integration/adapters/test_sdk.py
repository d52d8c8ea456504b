"""A consumer written with the pull SDK (examples/sdk_subscriber.py) receives, commits after
handling, gets an event again when its handler failed, and writes results back as events."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from whale import sdk, topics
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "example_sdk_subscriber", ROOT / "examples/sdk_subscriber.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_sdk_subscriber"] = module
    spec.loader.exec_module(module)
    return module


def committed(settings: WhaleSettings, group: str, partition: int) -> int:
    consumer = Consumer({**settings.kafka_config(), "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topics.EVENTS, partition)], timeout=30)
        return int(tp.offset)
    finally:
        consumer.close()


async def test_sdk_consumer_receives_commits_after_handling_and_publishes_results(
    stack: WhaleSettings, taps: Any, unique: str
) -> None:
    example = load_example()
    type_ = f"test.sdk.{unique}.ci.created"
    group = f"test-sdk-{unique}"
    tap = taps(topics.INGEST)
    producer = EventProducer(stack)
    sent = [
        CloudEvent.create(
            type=type_, source="/test/sdk", subject=f"ci-{unique}", data={"id": f"ci-{i}", "kind": "vm"}
        )
        for i in range(2)
    ]
    where = [await producer.send(topics.EVENTS, e) for e in sent]  # as the event center would
    producer.close()
    assert where[0].partition == where[1].partition  # same subject, same partition, in order

    with pytest.raises(RuntimeError, match="handler crashed"):
        async with sdk.subscribe(stack, group=group, types=[type_], from_beginning=True) as events:
            async for event in events:
                assert event.id == sent[0].id
                raise RuntimeError("handler crashed")
    assert committed(stack, group, where[0].partition) < where[0].offset + 1  # nothing committed

    results = await asyncio.wait_for(
        example.run(stack, group=group, types=[type_], limit=2, from_beginning=True), timeout=90
    )
    sdk.close()
    assert [r.extensions["causationid"] for r in results] == [e.id for e in sent]  # the failed one came again
    assert results[0].data == {"ci": "ci-0", "ok": False, "problems": ["missing owner"]}
    assert committed(stack, group, where[0].partition) == where[1].offset + 1

    written = await tap.await_(lambda e: e.type == "ciaudit.ci.checked" and e.subject == f"ci-{unique}", 2)
    assert sorted(e.extensions["causationid"] for e in written) == sorted(e.id for e in sent)
