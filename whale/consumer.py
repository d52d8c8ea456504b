"""An at-least-once CloudEvents consumer on confluent-kafka.

Offsets are committed only after the handler succeeded. A message that cannot be read as a
CloudEvent goes to ``whale.dlq`` (original bytes as value, reason and origin in headers) and the
consumer moves on. A handler failure is retried with backoff: forever while the error says
``retryable`` (e.g. a store is down: processing pauses, nothing is skipped), else up to
``max_attempts`` times, after which the message is dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, TopicPartition

from whale import metrics, topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.errors import BindingError, WhaleError
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.settings import KAFKA_LOGGER, WhaleSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """A CloudEvent read from Kafka, with where it came from."""

    event: CloudEvent
    topic: str
    partition: int
    offset: int
    message: KafkaMessage


Handler = Callable[[Received], Awaitable[None]]
BatchHandler = Callable[[list[Received]], Awaitable[None]]


class Stopping(Exception):
    """Raised inside the consumer when shutdown interrupts a retry loop (nothing is committed)."""


def dlq_message(
    message: KafkaMessage, *, reason: str, topic: str, partition: int, offset: int, group: str
) -> KafkaMessage:
    """The dead-letter copy of ``message``: same key, value and headers plus reason and origin."""
    extra = (
        ("whale_dlq_reason", reason.encode("utf-8")[:4096]),
        ("whale_dlq_topic", topic.encode()),
        ("whale_dlq_partition", str(partition).encode()),
        ("whale_dlq_offset", str(offset).encode()),
        ("whale_dlq_group", group.encode()),
    )
    return KafkaMessage(message.key, message.value, message.headers + extra)


def commit_batch(consumer: Any, messages: Sequence[Any], **context: Any) -> None:
    """Commit, synchronously, the offset after the last readable message of each partition in
    ``messages`` (call it once they are all handled).

    A failed commit (the partitions were rebalanced away) is logged as ``commit_failed`` with
    ``context`` and not raised: the partitions' new owner reads those messages again (at-least-once).
    """
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        if msg.error() is None:
            tp = (msg.topic(), msg.partition())
            last[tp] = max(msg.offset(), last.get(tp, -1))
    if not last:
        return
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
        )
    except Exception as exc:
        log.warning("commit_failed", error=str(exc), **context)


async def write_dead_letter(
    producer: EventProducer,
    message: KafkaMessage,
    *,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    headers: Sequence[tuple[str, bytes]] = (),
    stopping: asyncio.Event | None = None,
) -> None:
    """Write the dead-letter copy of ``message`` (plus ``headers``) to ``whale.dlq``, retrying every
    second until Kafka acknowledges it: a dead letter is never lost. Raises :class:`Stopping` when
    ``stopping`` is set while it retries."""
    copy = dlq_message(message, reason=reason, topic=topic, partition=partition, offset=offset, group=group)
    if headers:
        copy = KafkaMessage(copy.key, copy.value, (*copy.headers, *headers))
    while True:
        try:
            await producer.send_message(topics.DLQ, copy)
        except Exception as exc:  # retried: an unacknowledged dead letter would be a lost event
            log.error("dlq_write_failed", error=str(exc), topic=topic, offset=offset, group=group)
            if stopping is not None and stopping.is_set():
                raise Stopping from None
            await asyncio.sleep(1.0)
        else:
            log.warning(
                "dead_lettered", group=group, topic=topic, partition=partition, offset=offset, reason=reason
            )
            return


class EventConsumer:
    """Consume topics in a consumer group and hand each event (or batch) to a coroutine."""

    def __init__(
        self,
        settings: WhaleSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        producer: EventProducer,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        max_batch: int = 500,
        poll_timeout: float = 0.5,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        auto_offset_reset: str = "earliest",
        extra: dict[str, Any] | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        conf: dict[str, Any] = {
            **settings.kafka_config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": auto_offset_reset,
            "enable.partition.eof": False,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "max.poll.interval.ms": 300_000,
            "logger": KAFKA_LOGGER,
        }
        conf.update(extra or {})
        self._consumer = Consumer(conf)
        self._topics = list(topics)
        self._group = group_id
        self._producer = producer
        self._handler = handler
        self._batch_handler = batch_handler
        self._max_batch = max_batch
        self._poll_timeout = poll_timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to finish the current batch and return (safe from signal handlers)."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until :meth:`stop`; then leave the group cleanly."""
        self._consumer.subscribe(self._topics)
        try:
            while not self._stopping.is_set():
                batch = await asyncio.to_thread(self._consumer.consume, self._max_batch, self._poll_timeout)
                if not batch:
                    continue
                try:
                    await self._process(batch)
                except Stopping:
                    break
                await asyncio.to_thread(commit_batch, self._consumer, batch, group=self._group)
        finally:
            await asyncio.to_thread(self._consumer.close)

    # ------------------------------------------------------------------ internals
    async def _process(self, batch: list[Any]) -> None:
        good: list[Received] = []
        for msg in batch:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka_consume_error", error=err.str(), group=self._group)
                continue
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
            try:
                event = from_kafka(plain)
            except BindingError as exc:
                await self._dead_letter(
                    plain, msg.topic(), msg.partition(), msg.offset(), f"unreadable: {exc}"
                )
                continue
            good.append(Received(event, msg.topic(), msg.partition(), msg.offset(), plain))
        if not good:
            return
        if self._batch_handler is not None:
            await self._attempt(self._batch_handler, good, good)
        else:
            assert self._handler is not None
            for item in good:
                with bound_event(item.event):
                    await self._attempt(self._handler, item, [item])

    async def _attempt(self, fn: Callable[[Any], Awaitable[None]], arg: Any, items: list[Received]) -> None:
        attempt = 0
        while True:
            try:
                await fn(arg)
                metrics.CONSUMED.labels(group=self._group, outcome="handled").inc(len(items))
                return
            except Exception as exc:
                attempt += 1
                retryable = isinstance(exc, WhaleError) and exc.retryable
                log.warning(
                    "handler_failed",
                    group=self._group,
                    attempt=attempt,
                    retryable=retryable,
                    error=f"{type(exc).__name__}: {exc}",
                )
                if not retryable and attempt >= self._max_attempts:
                    for item in items:
                        await self._dead_letter(
                            item.message,
                            item.topic,
                            item.partition,
                            item.offset,
                            f"handler failed {attempt} times: {type(exc).__name__}: {exc}",
                        )
                    return
            delay = min(self._backoff_max, self._backoff_base * (2 ** min(attempt - 1, 16)))
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                continue
            raise Stopping

    async def _dead_letter(
        self, message: KafkaMessage, topic: str, partition: int, offset: int, reason: str
    ) -> None:
        await write_dead_letter(
            self._producer,
            message,
            reason=reason,
            topic=topic,
            partition=partition,
            offset=offset,
            group=self._group,
            stopping=self._stopping,
        )
        metrics.CONSUMED.labels(group=self._group, outcome="dead_lettered").inc()
