"""The one consume loop (no Kafka: a fake confluent consumer): it hands out what is there without
waiting for a full batch, decodes, retries, dead-letters and commits only after handling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from whale.binding import KafkaMessage
from whale.consumer import EventConsumer, Received
from whale.errors import DeliveryError
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import FakeProducer

from .fakes import FakeConsumer, Msg, event_msg, fake_consumers


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[FakeConsumer]:
    return fake_consumers(monkeypatch)


def make(producer: FakeProducer, **kwargs: Any) -> EventConsumer:
    return EventConsumer(
        WhaleSettings(kafka_bootstrap="127.0.0.1:1"),
        group_id="g",
        topics=["t"],
        producer=cast(EventProducer, producer),
        backoff_base=0.001,
        **kwargs,
    )


async def run_until(consumer: EventConsumer, done: Callable[[], bool]) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(10):
            while not done() and not task.done():
                await asyncio.sleep(0.005)
    finally:
        consumer.stop()
        await task


async def test_a_lone_message_is_handed_out_without_waiting_for_a_full_batch(
    made: list[FakeConsumer],
) -> None:
    got: list[Received] = []

    async def handle(batch: list[Received]) -> None:
        got.extend(batch)

    consumer = make(FakeProducer(), batch_handler=handle, max_batch=500, poll_timeout=0.5)
    fake = consumer.consumer
    fake.arriving = [event_msg(7)]
    await run_until(consumer, lambda: bool(got))
    assert [r.offset for r in got] == [7]
    # only a one-message consume ever waits; a batch is taken only from what is fetched already
    assert all(n == 1 for n, timeout in fake.calls if timeout > 0)
    assert fake.calls[:3] == [(500, 0), (1, 0.5), (499, 0)]


async def test_what_is_fetched_already_is_handed_out_as_one_batch(made: list[FakeConsumer]) -> None:
    batches: list[list[int]] = []

    async def handle(batch: list[Received]) -> None:
        batches.append([r.offset for r in batch])

    consumer = make(FakeProducer(), batch_handler=handle, max_batch=3)
    consumer.consumer.fetched = [event_msg(i) for i in range(5)]
    await run_until(consumer, lambda: len(batches) == 2)
    assert batches == [[0, 1, 2], [3, 4]]


async def test_offsets_are_committed_only_after_the_batch_was_handled(made: list[FakeConsumer]) -> None:
    commits_seen_by_handler: list[int] = []

    async def handle(batch: list[Received]) -> None:
        commits_seen_by_handler.append(len(fake.commits))

    consumer = make(FakeProducer(), batch_handler=handle)
    fake = consumer.consumer
    fake.fetched = [event_msg(4), event_msg(5)]
    await run_until(consumer, lambda: bool(fake.commits))
    assert commits_seen_by_handler == [0]
    assert fake.commits == [[("t", 0, 6)]]
    assert fake.closed


async def test_a_retryable_failure_is_retried_until_it_succeeds_and_nothing_is_dead_lettered(
    made: list[FakeConsumer],
) -> None:
    attempts: list[int] = []

    async def handle(batch: list[Received]) -> None:
        attempts.append(len(batch))
        if len(attempts) < 8:  # more than max_attempts: a retryable error is never given up on
            raise DeliveryError("broker away", retryable=True)

    producer = FakeProducer()
    consumer = make(producer, batch_handler=handle, max_attempts=2)
    consumer.consumer.fetched = [event_msg(0)]
    await run_until(consumer, lambda: bool(consumer.consumer.commits))
    assert len(attempts) == 8 and producer.messages == []
    assert consumer.consumer.commits == [[("t", 0, 1)]]


async def test_a_failure_that_stays_is_dead_lettered_after_max_attempts_then_committed(
    made: list[FakeConsumer],
) -> None:
    attempts: list[int] = []

    async def handle(item: Received) -> None:
        attempts.append(item.offset)
        raise ValueError("cannot handle this one")

    producer = FakeProducer()
    consumer = make(producer, handler=handle, max_attempts=3, dlq_headers=[("x-extra", b"1")])
    consumer.consumer.fetched = [event_msg(9)]
    await run_until(consumer, lambda: bool(consumer.consumer.commits))
    assert attempts == [9, 9, 9]
    [(topic, dead)] = producer.messages
    assert topic == "whale.dlq"
    assert "handler failed 3 times: ValueError: cannot handle this one" in (
        dead.header_text("whale_dlq_reason") or ""
    )
    assert dead.header_text("whale_dlq_offset") == "9" and dead.header_text("x-extra") == "1"
    assert consumer.consumer.commits == [[("t", 0, 10)]]


async def test_an_unreadable_message_is_dead_lettered_and_the_rest_handed_out(
    made: list[FakeConsumer],
) -> None:
    got: list[Received] = []
    told: list[str] = []

    async def handle(batch: list[Received]) -> None:
        got.extend(batch)

    producer = FakeProducer()
    consumer = make(producer, batch_handler=handle, on_unreadable=lambda message, reason: told.append(reason))
    consumer.consumer.fetched = [Msg(KafkaMessage(b"k", b"junk", ()), 0), event_msg(1)]
    await run_until(consumer, lambda: bool(consumer.consumer.commits))
    assert [r.offset for r in got] == [1] and got[0].timestamp_ms == 1_700_000_000_001
    [(_, dead)] = producer.messages
    assert dead.value == b"junk" and (dead.header_text("whale_dlq_reason") or "").startswith("unreadable")
    assert len(told) == 1 and told[0].startswith("unreadable")
    assert consumer.consumer.commits == [[("t", 0, 2)]]


async def test_a_stop_during_retries_commits_nothing(made: list[FakeConsumer]) -> None:
    attempts: list[int] = []

    async def handle(batch: list[Received]) -> None:
        attempts.append(1)
        raise DeliveryError("broker away", retryable=True)

    consumer = make(FakeProducer(), batch_handler=handle)
    consumer.consumer.fetched = [event_msg(0)]
    await run_until(consumer, lambda: len(attempts) >= 3)
    assert consumer.consumer.commits == [] and consumer.consumer.closed


async def test_raw_messages_are_handed_out_undecoded_and_an_unretryable_error_is_raised_when_asked(
    made: list[FakeConsumer],
) -> None:
    got: list[Any] = []

    async def handle(batch: list[Any]) -> None:
        got.extend(batch)
        raise RuntimeError("a bug")

    producer = FakeProducer()
    consumer = make(producer, raw_handler=handle, max_attempts=None)
    consumer.consumer.fetched = [Msg(KafkaMessage(b"k", b"junk", ()), 0)]
    with pytest.raises(RuntimeError, match="a bug"):
        await consumer.run()
    assert [m.value() for m in got] == [b"junk"]
    assert producer.messages == [] and consumer.consumer.commits == [] and consumer.consumer.closed


async def test_rebalance_callbacks_and_the_housekeeping_hook_are_wired(made: list[FakeConsumer]) -> None:
    turns: list[int] = []

    async def before() -> None:
        turns.append(1)

    async def handle(batch: list[Received]) -> None:
        return None

    def assigned(consumer: Any, partitions: list[Any]) -> None:
        return None

    consumer = make(FakeProducer(), batch_handler=handle, before_fetch=before, on_assign=assigned)
    await run_until(consumer, lambda: len(turns) >= 2)
    assert consumer.consumer.subscribed_with == {"on_assign": assigned}
    assert not consumer.subscribed


def test_exactly_one_handler_is_required() -> None:
    async def handle(batch: list[Received]) -> None:
        return None

    with pytest.raises(ValueError, match="exactly one"):
        make(FakeProducer(), handler=handle, batch_handler=handle)  # type: ignore[arg-type]
