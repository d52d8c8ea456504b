"""The per-key ordered variant of the consume loop (no Kafka: a fake confluent consumer): requests of
one key in order, of different keys at once; the committed offset is the lowest one in progress; the
partitions pause at ``max_pending``; failures are dead-lettered; a stop drains what runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from confluent_kafka import TopicPartition

from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent
from whale.consume_keyed import KeyedConsumer
from whale.consumer import Received
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import FakeProducer

from .fakes import FakeConsumer, Msg, fake_consumers


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[FakeConsumer]:
    return fake_consumers(monkeypatch)


def keyed(handler: Any, producer: FakeProducer | None = None, **kwargs: Any) -> KeyedConsumer:
    consumer = KeyedConsumer(
        WhaleSettings(kafka_bootstrap="127.0.0.1:1"),
        group_id="g",
        topics=["t"],
        producer=cast(EventProducer, producer or FakeProducer()),
        handler=handler,
        **kwargs,
    )
    consumer.consumer.partitions = [TopicPartition("t", 0), TopicPartition("t", 1)]
    return consumer


def request(offset: int, key: str, partition: int = 0) -> Msg:
    event = CloudEvent.create(type="t.requested", source="/t", data={"n": offset})
    return Msg(to_binary(event, key), offset, partition)


def fake(consumer: KeyedConsumer) -> FakeConsumer:
    return cast(FakeConsumer, consumer.consumer)


async def until(done: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not done():
            await asyncio.sleep(0.005)


@asynccontextmanager
async def running(consumer: KeyedConsumer) -> AsyncIterator[None]:
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        consumer.stop()
        await task


class Gated:
    """A handler whose request ``n`` (its data) waits for ``gates[n]``; notes starts and ends."""

    def __init__(self, count: int) -> None:
        self.gates = [asyncio.Event() for _ in range(count)]
        self.started: list[int] = []
        self.finished: list[int] = []

    async def __call__(self, received: Received) -> None:
        n = received.event.data["n"]
        self.started.append(n)
        await self.gates[n].wait()
        self.finished.append(n)


def committed(consumer: KeyedConsumer) -> list[list[tuple[str, int, int]]]:
    return fake(consumer).commits


async def test_one_key_runs_in_order_while_other_keys_run_at_the_same_time(made: list[FakeConsumer]) -> None:
    handler = Gated(4)
    consumer = keyed(handler)
    fake(consumer).fetched = [request(0, "a"), request(1, "b"), request(2, "a"), request(3, "c")]
    async with running(consumer):
        await until(lambda: len(handler.started) == 3)
        assert sorted(handler.started) == [0, 1, 3] and handler.finished == []  # three at once
        assert consumer.in_flight == 4  # offset 2 (key a) waits behind offset 0
        handler.gates[2].set()
        handler.gates[1].set()
        await until(lambda: handler.finished == [1])
        assert 2 not in handler.started
        handler.gates[0].set()
        await until(lambda: handler.finished == [1, 0, 2])
        assert handler.started[-1] == 2
        handler.gates[3].set()


async def test_the_committed_offset_is_the_lowest_one_still_in_progress(made: list[FakeConsumer]) -> None:
    handler = Gated(4)
    consumer = keyed(handler)
    fake(consumer).fetched = [request(0, "a"), request(1, "b"), request(2, "a"), request(3, "c")]
    async with running(consumer):
        await until(lambda: bool(committed(consumer)) and len(handler.started) == 3)
        handler.gates[1].set()
        handler.gates[3].set()
        await until(lambda: handler.finished == [1, 3] or handler.finished == [3, 1])
        handler.gates[0].set()
        await until(lambda: committed(consumer)[-1] == [("t", 0, 2)])  # 2 runs now: nothing past it
        handler.gates[2].set()
        await until(lambda: committed(consumer)[-1] == [("t", 0, 4)])
    assert committed(consumer) == [[("t", 0, 0)], [("t", 0, 2)], [("t", 0, 4)]]


async def test_partitions_pause_at_max_pending_and_resume_below_half(made: list[FakeConsumer]) -> None:
    handler = Gated(3)
    in_flight: list[int] = []
    consumer = keyed(handler, max_pending=2, on_in_flight=in_flight.append)
    fake(consumer).fetched = [request(0, "a"), request(1, "b", partition=1), request(2, "c")]
    both = [("t", 0), ("t", 1)]
    async with running(consumer):
        await until(lambda: bool(fake(consumer).flow))
        assert fake(consumer).flow == [("pause", both)] and consumer.in_flight == 3
        handler.gates[0].set()
        handler.gates[1].set()
        await until(lambda: consumer.in_flight == 1)
        assert fake(consumer).flow == [("pause", both)]  # 1 is not below half of 2: still paused
        handler.gates[2].set()
        await until(lambda: len(fake(consumer).flow) == 2)
        assert fake(consumer).flow == [("pause", both), ("resume", both)]
    assert in_flight[:3] == [1, 2, 3] and in_flight[-1] == 0


async def test_a_failing_request_is_dead_lettered_and_an_unreadable_one_too_then_both_committed(
    made: list[FakeConsumer],
) -> None:
    async def handle(received: Received) -> None:
        raise ValueError("cannot run this")

    producer = FakeProducer()
    consumer = keyed(handle, producer, max_attempts=2, backoff_base=0.001)
    fake(consumer).fetched = [request(0, "a"), Msg(KafkaMessage(b"b", b"junk", ()), 1)]
    async with running(consumer):
        await until(lambda: bool(committed(consumer)) and committed(consumer)[-1] == [("t", 0, 2)])
    reasons = sorted(dead.header_text("whale_dlq_reason") or "" for _, dead in producer.messages)
    assert reasons[0] == "handler failed 2 times: ValueError: cannot run this"
    assert reasons[1].startswith("unreadable")


async def test_a_stop_lets_running_requests_finish_within_the_drain_and_cancels_the_rest(
    made: list[FakeConsumer],
) -> None:
    cancelled: list[int] = []
    handler = Gated(2)

    async def handle(received: Received) -> None:
        try:
            await handler(received)
        except asyncio.CancelledError:
            cancelled.append(received.event.data["n"])
            raise

    consumer = keyed(handle, drain_timeout=2.0)
    fake(consumer).fetched = [request(0, "a"), request(1, "b", partition=1)]
    async with running(consumer):
        await until(lambda: len(handler.started) == 2)
        asyncio.get_running_loop().call_later(0.05, handler.gates[1].set)  # ends during the drain
    assert cancelled == [0] and handler.finished == [1]
    assert ("t", 1, 2) in committed(consumer)[-1]
    assert all(commit != ("t", 0, 1) for commits in committed(consumer) for commit in commits)


async def test_messages_of_partitions_not_assigned_are_not_handed_out(made: list[FakeConsumer]) -> None:
    handler = Gated(3)
    consumer = keyed(handler)
    fake(consumer).partitions = [TopicPartition("t", 0)]
    fake(consumer).fetched = [request(0, "a", partition=1), request(1, "b")]
    for gate in handler.gates:
        gate.set()
    async with running(consumer):
        await until(lambda: handler.finished == [1])
        await until(lambda: bool(committed(consumer)) and committed(consumer)[-1] == [("t", 0, 2)])
    assert handler.started == [1]
