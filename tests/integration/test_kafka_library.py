"""The shared CloudEvents-on-Kafka library against the real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest
from confluent_kafka import Consumer

from whale import metrics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.consumer import EventConsumer, Received
from whale.errors import DeliveryError
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.topics import DLQ, TopicSpec

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(stack: WhaleSettings, unique: str) -> str:
    name = f"test.lib.{unique}"
    ensure_topics(stack, [TopicSpec(name, 3, "test topic", retention_ms=3_600_000)])
    return name


@pytest.fixture
async def producer(stack: WhaleSettings) -> AsyncIterator[EventProducer]:
    p = EventProducer(stack)
    yield p
    p.close()


async def _collect(consumer: EventConsumer, bucket: list[Received], count: int, timeout: float = 60) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(timeout):
            while len(bucket) < count:
                await asyncio.sleep(0.05)
    finally:
        consumer.stop()
        await task


async def test_round_trip_in_binary_mode_keeps_every_attribute_and_extension(
    stack: WhaleSettings, topic: str, producer: EventProducer, unique: str
) -> None:
    sent = CloudEvent.from_structured(
        {
            "specversion": "1.0",
            "id": f"rt-{unique}",
            "source": "urn:test:roundtrip",
            "type": "whale.test.roundtrip",
            "subject": "host-1",
            "time": "2026-11-23T10:00:00.123000Z",
            "datacontenttype": "application/json",
            "dataschema": "http://127.0.0.1:8080/schemas/whale.test.roundtrip/versions/1",
            "correlationid": "corr-1",
            "causationid": "cause-1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "partitionkey": "pk-1",
            "data": {"usage": 91.5, "labels": {"instance": "host-1"}, "list": [1, "two", None]},
        }
    )
    delivered = await producer.send(topic, sent)
    assert delivered.topic == topic and delivered.offset >= 0
    got: list[Received] = []

    async def handle(item: Received) -> None:
        got.append(item)

    await _collect(
        EventConsumer(stack, group_id=f"g-{unique}", topics=[topic], producer=producer, handler=handle),
        got,
        1,
    )
    assert got[0].event.to_structured() == sent.to_structured()
    assert got[0].message.key == b"pk-1"
    assert got[0].message.header("ce_id") == f"rt-{unique}".encode()


async def test_events_with_the_same_key_arrive_in_order(
    stack: WhaleSettings, topic: str, producer: EventProducer, unique: str
) -> None:
    sends = [
        producer.send(
            topic, CloudEvent.create(type="whale.test.order", source="/t", subject=f"k{i % 4}", data={"n": i})
        )
        for i in range(200)
    ]
    await asyncio.gather(*sends)
    got: list[Received] = []

    async def handle(item: Received) -> None:
        got.append(item)

    await _collect(
        EventConsumer(stack, group_id=f"g-{unique}", topics=[topic], producer=producer, handler=handle),
        got,
        200,
    )
    for key in ("k0", "k1", "k2", "k3"):
        seen = [r.event.data["n"] for r in got if r.event.subject == key]
        assert seen == sorted(seen) and len(seen) == 50


async def test_the_consumer_reports_its_groups_lag_per_topic_and_it_falls_to_zero_once_read(
    stack: WhaleSettings, topic: str, producer: EventProducer, unique: str
) -> None:
    await asyncio.gather(
        *(
            producer.send(topic, CloudEvent.create(type="whale.test.lag", source="/t", data={"n": i}))
            for i in range(20)
        )
    )
    group, seen = f"g-{unique}", []
    got: list[Received] = []

    def lag() -> float | None:
        return metrics.process_registry(metrics.CONSUMER).get_sample_value(
            "whale_consumer_lag_messages", {"group": group, "topic": topic}
        )

    async def handle(item: Received) -> None:
        await asyncio.sleep(0.2)  # a slow stage: the rest of the topic waits, one event per fetch
        got.append(item)
        seen.append(lag())

    fast = {"statistics.interval.ms": 300}  # librdkafka's statistics (served by each fetch) every 0.3 s
    consumer = EventConsumer(
        stack, group_id=group, topics=[topic], producer=producer, handler=handle, max_batch=1, extra=fast
    )
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(60):
            while len(got) < 20 or lag() != 0:
                await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await task
    assert any(value is not None and value > 0 for value in seen), seen  # behind while reading


async def test_a_poison_message_goes_to_the_dlq_with_its_reason_and_the_consumer_continues(
    stack: WhaleSettings, topic: str, producer: EventProducer, unique: str
) -> None:
    await producer.send_message(topic, KafkaMessage(b"k", b"not a cloudevent", (("x-origin", b"test"),)))
    good = CloudEvent.create(type="whale.test.after", source="/t", subject="k", data={"ok": True})
    await producer.send(topic, good)
    got: list[Received] = []

    async def handle(item: Received) -> None:
        got.append(item)

    group = f"g-{unique}"
    await _collect(
        EventConsumer(stack, group_id=group, topics=[topic], producer=producer, handler=handle), got, 1
    )
    assert got[0].event.id == good.id
    dead = _read_dlq(stack, lambda m: m.header_text("whale_dlq_topic") == topic)
    assert dead.value == b"not a cloudevent" and dead.key == b"k"
    assert "no ce_specversion" in (dead.header_text("whale_dlq_reason") or "")
    assert dead.header_text("whale_dlq_group") == group and dead.header_text("x-origin") == "test"
    assert (
        dead.header_text("whale_dlq_offset") is not None
        and dead.header_text("whale_dlq_partition") is not None
    )


async def test_a_handler_that_keeps_failing_dead_letters_the_event_with_the_error(
    stack: WhaleSettings, topic: str, producer: EventProducer, unique: str
) -> None:
    bad = CloudEvent.create(type="whale.test.fails", source="/t", subject="k")
    good = CloudEvent.create(type="whale.test.ok", source="/t", subject="k")
    await producer.send(topic, bad)
    await producer.send(topic, good)
    got: list[Received] = []

    async def handle(item: Received) -> None:
        if item.event.id == bad.id:
            raise ValueError("cannot handle this one")
        got.append(item)

    consumer = EventConsumer(
        stack,
        group_id=f"g-{unique}",
        topics=[topic],
        producer=producer,
        handler=handle,
        max_attempts=2,
        backoff_base=0.01,
    )
    await _collect(consumer, got, 1)
    dead = _read_dlq(stack, lambda m: m.header_text("whale_dlq_topic") == topic)
    assert from_kafka(dead).id == bad.id
    assert "ValueError: cannot handle this one" in (dead.header_text("whale_dlq_reason") or "")


CRASHING_CONSUMER = textwrap.dedent(
    """
    import asyncio, os, sys
    from whale.consumer import EventConsumer
    from whale.producer import EventProducer
    from whale.settings import WhaleSettings

    async def main() -> None:
        settings = WhaleSettings()
        producer = EventProducer(settings)

        async def handle(item):
            print("HANDLING", item.event.id, flush=True)
            os._exit(9)  # dies like kill -9: after handling started, before any commit

        await EventConsumer(settings, group_id=sys.argv[1], topics=[sys.argv[2]], producer=producer,
                            handler=handle).run()

    asyncio.run(main())
    """
)


async def test_a_consumer_killed_before_commit_leaves_the_event_to_be_read_again(
    stack: WhaleSettings, topic: str, producer: EventProducer, unique: str
) -> None:
    event = CloudEvent.create(type="whale.test.crash", source="/t", subject="k")
    await producer.send(topic, event)
    group = f"g-{unique}"
    env = {**os.environ, "WHALE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CRASHING_CONSUMER, group, topic],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 9 and f"HANDLING {event.id}" in proc.stdout.decode()
    got: list[Received] = []

    async def handle(item: Received) -> None:
        got.append(item)

    await _collect(
        EventConsumer(stack, group_id=group, topics=[topic], producer=producer, handler=handle), got, 1
    )
    assert got[0].event.id == event.id


async def test_the_producer_reports_failure_when_no_broker_answers(stack: WhaleSettings) -> None:
    down = WhaleSettings(kafka_bootstrap="127.0.0.1:1")
    dead_producer = EventProducer(down, delivery_timeout_ms=2000)
    try:
        with pytest.raises(DeliveryError, match="did not acknowledge") as err:
            await dead_producer.send("whale.events", CloudEvent.create(type="t", source="/s"))
        assert err.value.event_id is not None and err.value.retryable
    finally:
        dead_producer.close(timeout=1)


def _read_dlq(
    settings: WhaleSettings, predicate: Callable[[KafkaMessage], bool], timeout: float = 30
) -> KafkaMessage:
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"dlq-reader-{os.getpid()}-{id(predicate)}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([DLQ])
    try:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            # A consumed message's header values are bytes; confluent's type also allows str (producer side).
            headers = cast("list[tuple[str, bytes | None]] | None", msg.headers())
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(headers))
            if predicate(plain):
                return plain
        raise AssertionError("no matching message in whale.dlq")
    finally:
        consumer.close()


async def test_a_view_that_failed_to_start_starts_once_its_topic_exists(
    stack: WhaleSettings, unique: str, producer: EventProducer
) -> None:
    """A compacted view whose first start fails (its topic is missing) is not stuck with that
    error: the same view started again after the topic appears reads it."""
    from whale import compacted
    from whale.errors import WhaleError

    name = f"test.lib.view.{unique}"
    view = compacted.CompactedView(stack, name)
    with pytest.raises(WhaleError, match="does not exist"):
        await view.start(timeout=30)
    ensure_topics(stack, [TopicSpec(name, 1, "test view", compacted=True)])
    event = CloudEvent.create(type="test.entity", source="/test", data={"n": 1})
    await compacted.put(producer, name, "entity-1", event)
    try:
        await view.start(timeout=60)
        assert view.items().keys() == {"entity-1"}
    finally:
        await view.stop()
