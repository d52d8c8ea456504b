"""whale.testing: the fake producer records and feeds views as Kafka would, the fake view answers as
a compacted view does, capture_events collects a block's events, the tap reads a real topic."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from whale import topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent
from whale.errors import DeliveryError
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import FakeProducer, FakeView, Sent, Tap, capture_events
from whale.topics import TopicSpec


def event(type: str = "test.thing", **data: object) -> CloudEvent:
    return CloudEvent.create(type=type, source="/test", data=data or {"x": 1})


def test_the_producer_records_sends_messages_and_every_write_in_order() -> None:
    producer = FakeProducer()
    first = event()
    delivered = asyncio.run(producer.send("a", first, key="k1"))
    tombstone = KafkaMessage(b"k1", None, ())
    asyncio.run(producer.send_message("b", tombstone))
    assert producer.sent == [Sent("a", first, "k1")]
    assert producer.messages == [("b", tombstone)]
    assert [(t, m.key) for t, m in producer.records] == [("a", b"k1"), ("b", b"k1")]
    assert (delivered.topic, delivered.offset) == ("a", 0)
    assert producer.events() == [first]  # a tombstone is no event
    assert producer.events("b") == []


def test_events_filter_by_topic_and_type_prefix() -> None:
    producer = FakeProducer()
    asyncio.run(producer.send(topics.RESULTS, event("whale.action.succeeded")))
    asyncio.run(producer.send(topics.RESULTS, event("whale.workflow.completed")))
    asyncio.run(producer.send_message(topics.EVENTS, to_binary(event("whale.audit.x"))))
    assert [e.type for e in producer.events(topics.RESULTS, "whale.workflow.")] == [
        "whale.workflow.completed"
    ]
    assert [e.type for e in producer.events(type_prefix="whale.audit.")] == ["whale.audit.x"]


def test_a_failing_producer_raises_a_delivery_error_and_records_nothing() -> None:
    producer = FakeProducer(fail=True)
    with pytest.raises(DeliveryError):
        asyncio.run(producer.send("a", event()))
    with pytest.raises(DeliveryError):
        producer.send_blocking("a", to_binary(event()))
    assert producer.records == []


def test_writes_to_a_viewed_topic_change_the_view_and_tombstones_delete() -> None:
    view = FakeView()
    producer = FakeProducer(views={topics.RULES: view})
    record = event("whale.rule.saved")
    asyncio.run(producer.send(topics.RULES, record, key="r1"))
    asyncio.run(producer.send(topics.EVENTS, event("whale.audit.rule"), key="r2"))  # not the view's topic
    assert view.items() == {"r1": record}
    asyncio.run(producer.send_message(topics.RULES, KafkaMessage(b"r1", None, ())))
    assert view.get("r1") is None


def test_on_send_sees_each_send() -> None:
    seen: list[Sent] = []
    producer = FakeProducer(on_send=seen.append)
    asyncio.run(producer.send("a", event(), key="k"))
    assert seen == producer.sent


def test_the_fake_producer_offers_what_services_use_of_the_real_one() -> None:
    used = {"send", "send_message", "send_blocking", "flush", "close", "saturated"}
    assert used <= set(dir(EventProducer))
    assert used <= set(dir(FakeProducer()))


def test_capture_events_collects_only_the_block_and_the_topic() -> None:
    producer = FakeProducer()
    asyncio.run(producer.send("a", event("before")))
    with capture_events(producer, "a") as events:
        asyncio.run(producer.send("a", event("inside")))
        asyncio.run(producer.send("b", event("elsewhere")))
        asyncio.run(producer.send_message("a", KafkaMessage(b"k", None, ())))
    asyncio.run(producer.send("a", event("after")))
    assert [e.type for e in events] == ["inside"]
    with capture_events(producer) as everything:
        asyncio.run(producer.send("b", event("any")))
    assert [e.type for e in everything] == ["any"]


def test_the_view_answers_and_wait_for_wakes_on_apply() -> None:
    view = FakeView({"a": event()})
    assert set(view.items()) == {"a"} and view.get("b") is None
    assert view.wait_for(lambda items: "a" in items, timeout=0)
    assert not view.wait_for(lambda items: "b" in items, timeout=0.01)
    threading.Timer(0.05, view.apply, ("b", event())).start()
    assert view.wait_for(lambda items: "b" in items, timeout=10)


@pytest.mark.integration
def test_a_tap_sees_what_is_written_after_it_opened_and_keeps_poison_apart(stack: WhaleSettings) -> None:
    topic = f"test.testing.{uuid.uuid4().hex[:10]}"
    producer = EventProducer(stack)
    try:
        ensure_topics(stack, [TopicSpec(topic, 1, "whale.testing tap test", retention_ms=3_600_000)])
        early = event("test.early")
        producer.send_blocking(topic, to_binary(early))
        with Tap(stack, topic, keep=lambda e: e.type != "test.skipped") as tap:
            producer.send_blocking(topic, to_binary(event("test.skipped")))
            producer.send_blocking(topic, KafkaMessage(b"poison", b"not an event", ()))
            mine = event("test.mine", n=1)
            producer.send_blocking(topic, to_binary(mine))
            assert [e.id for e in tap.wait(lambda e: e.type == "test.mine")] == [mine.id]
            assert len(tap.wait_messages(3)) == 3  # every message read, events or not
            assert [e.id for e in tap.of("test.", n=1)] == [mine.id]
            assert early.id not in {e.id for e in tap.events}
        with Tap(stack, topic, from_start=True) as again:
            assert early.id in {e.id for e in again.wait(lambda e: e.id == early.id, timeout=30)}
    finally:
        producer.close()
        AdminClient(stack.kafka_config()).delete_topics([topic])
