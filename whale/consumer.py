"""The one consume loop of Whale's Kafka stages (at-least-once, on confluent-kafka).

:class:`EventConsumer` owns polling, decoding, the dead-letter path, retries, rebalance callbacks,
metrics and commits; a stage gives it a handler. Each turn it hands out what is already fetched,
waiting up to ``poll_timeout`` only while nothing is (never for a full batch), handles the batch,
then commits the offsets after it. A message that cannot be read as a CloudEvent goes to
``whale.dlq`` (original bytes as value, reason and origin in headers) and the consumer moves on. A
handler failure is retried with backoff: forever while the error is retryable (by default a
``WhaleError`` that says so, e.g. a store is down: processing pauses, nothing is skipped), else up
to ``max_attempts`` times, after which the messages are dead-lettered with the reason. A batch is
handed out to a batch handler, one event at a time to a handler, or as raw messages
(``raw_handler``: no decoding, for readers of ``whale.dlq`` itself). It is the only loop: a variant
overrides only how it attaches and detaches (:meth:`EventConsumer._attach`, ``_detach``), fetches
(``_poll``, ``_fetch``, ``_failed``, ``_idle``), hands out (``_hand_out``) and commits (``_commit``,
``_drain``): per-key ordered tasks committing what they finished (:mod:`whale.consume_keyed`), and
the reader of a changelog or compacted topic by assignment (:class:`whale.changelog.PartitionReader`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, TopicPartition

from whale import metrics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.dead_letter import Stopping, write_dead_letter
from whale.errors import BindingError, WhaleError
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.settings import KAFKA_LOGGER, WhaleSettings
from whale.topics import DLQ

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """A CloudEvent read from Kafka, with where it came from."""

    event: CloudEvent
    topic: str
    partition: int
    offset: int
    message: KafkaMessage
    timestamp_ms: int | None = None  # the record's Kafka timestamp, when it has one


Handler = Callable[[Received], Awaitable[None]]
BatchHandler = Callable[[list[Received]], Awaitable[None]]
RawHandler = Callable[[list[Any]], Awaitable[None]]
Rebalance = Callable[[Any, list[TopicPartition]], None]


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


class EventConsumer:
    """Consume topics in a consumer group and hand each batch (or event) to a coroutine.

    Give exactly one of ``handler`` (one event at a time, in order), ``batch_handler`` (the decoded
    batch) and ``raw_handler`` (the fetched messages as they are; nothing decoded or dead-lettered as
    unreadable; ``producer`` may then be None when ``max_attempts`` is None too). ``retryable`` says
    which handler errors are retried forever; ``max_attempts`` None raises any other error out of
    :meth:`run` instead of dead-lettering. ``before_fetch`` runs before
    every fetch (housekeeping, or waiting while paused); ``on_assign``/``on_revoke``/``on_lost`` are
    the rebalance callbacks (called on the fetch thread); ``on_unreadable`` is told of every message
    dead-lettered as unreadable; ``dlq_headers`` are added to every dead letter (on ``dlq_topic``);
    ``decode`` reads each message's event (default :func:`whale.binding.from_kafka`; it must accept
    and refuse what that does, e.g. :func:`whale.light_event.decode_model`). ``consumer``: one made
    already, instead of ``settings`` (a variant's; its configuration is its own).
    """

    def __init__(
        self,
        settings: WhaleSettings | None,
        *,
        group_id: str,
        topics: Sequence[str],
        producer: EventProducer | None,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        raw_handler: RawHandler | None = None,
        max_batch: int = 500,
        poll_timeout: float = 0.5,
        max_attempts: int | None = 5,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        retryable: Callable[[Exception], bool] | None = None,
        auto_offset_reset: str = "earliest",
        extra: dict[str, Any] | None = None,
        before_fetch: Callable[[], Awaitable[None]] | None = None,
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
        on_unreadable: Callable[[KafkaMessage, str], None] | None = None,
        dlq_headers: Sequence[tuple[str, bytes]] = (),
        dlq_topic: str = DLQ,
        decode: Callable[[KafkaMessage], CloudEvent] = from_kafka,
        consumer: Any = None,
    ) -> None:
        if sum(h is not None for h in (handler, batch_handler, raw_handler)) != 1:
            raise ValueError("give exactly one of handler, batch_handler and raw_handler")
        if (settings is None) == (consumer is None):
            raise ValueError("give exactly one of settings and consumer (one made already)")
        self._conf: dict[str, Any] = (
            {}
            if settings is None
            else {
                **settings.kafka_config(),
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": auto_offset_reset,
                "enable.partition.eof": False,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                "max.poll.interval.ms": 300_000,
                "logger": KAFKA_LOGGER,
                "statistics.interval.ms": metrics.LAG_INTERVAL_MS,
                "stats_cb": metrics.lag_reporter(group_id),
                **(extra or {}),
            }
        )
        self._consumer: Any = consumer
        self._topics = list(topics)
        self.group = group_id
        self._producer = producer
        self._handler = handler
        self._batch_handler = batch_handler
        self._raw_handler = raw_handler
        self._max_batch = max_batch
        self._poll_timeout = poll_timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._retryable = retryable or _retryable
        self._before_fetch = before_fetch
        self._rebalance = {
            name: fn
            for name, fn in (("on_assign", on_assign), ("on_revoke", on_revoke), ("on_lost", on_lost))
            if fn is not None
        }
        self._on_unreadable = on_unreadable
        self._dlq_headers = tuple(dlq_headers)
        self._dlq_topic = dlq_topic
        self._decode_event = decode
        self._stopping = asyncio.Event()
        self.subscribed = False  # subscribed and not closed yet

    @property
    def consumer(self) -> Any:
        """The confluent-kafka consumer (created on first use)."""
        if self._consumer is None:
            self._consumer = Consumer(self._conf)
        return self._consumer

    def stop(self) -> None:
        """Ask :meth:`run` to finish the current batch and return (safe from signal handlers)."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until :meth:`stop`; then leave the group cleanly (a batch interrupted by the stop
        is not committed: the group reads it again)."""
        try:
            await self._attach()
            while not self._stopping.is_set():
                if self._before_fetch is not None:
                    await self._before_fetch()
                    if self._stopping.is_set():
                        break
                batch = self._readable(await self._poll())
                if not batch:
                    await self._idle()
                    continue
                try:
                    await self._hand_out(batch)
                except Stopping as stop:
                    await self._commit(_before(batch, stop.unhandled))
                    break
                await self._commit(batch)
            await self._drain()
        finally:
            await self._detach()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; raise :class:`Stopping` as soon as :meth:`stop` is called."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopping

    async def dead_letter(
        self, message: KafkaMessage, topic: str, partition: int, offset: int, reason: str
    ) -> None:
        """Write ``message`` to ``whale.dlq`` with ``reason`` (retried until acknowledged, or until
        :meth:`stop`, which raises :class:`Stopping`)."""
        if self._producer is None:
            raise RuntimeError(f"consumer group {self.group} has no producer to dead-letter with")
        await write_dead_letter(
            self._producer,
            message,
            reason=reason,
            topic=topic,
            partition=partition,
            offset=offset,
            group=self.group,
            headers=self._dlq_headers,
            stopping=self._stopping,
            dlq_topic=self._dlq_topic,
        )
        metrics.CONSUMED.labels(group=self.group, outcome="dead_lettered").inc()

    # ------------------------------------------------------------------ fetching
    async def _attach(self) -> None:
        """Join the group (a variant assigns partitions instead)."""
        await asyncio.to_thread(self.consumer.subscribe, self._topics, **self._rebalance)
        self.subscribed = True

    async def _detach(self) -> None:
        """Leave the group (after the last turn, or when the loop failed)."""
        self.subscribed = False
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)

    async def _idle(self) -> None:
        """A turn fetched nothing readable (a variant notices the end of its partitions here)."""

    async def _poll(self) -> list[Any]:
        """One turn's fetch, on a thread: the event loop goes on meanwhile."""
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> list[Any]:
        return fetch_ready(self.consumer, self._max_batch, self._poll_timeout)

    def _readable(self, batch: list[Any]) -> list[Any]:
        good = [m for m in batch if m.error() is None]
        if len(good) < len(batch):
            self._failed([m for m in batch if m.error() is not None])
        return good

    def _failed(self, events: list[Any]) -> None:
        """The error events of a fetch (a variant notes its end-of-partition events here)."""
        for msg in events:
            err = msg.error()
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:  # e.g. a pattern-matched topic was deleted
                log.debug("kafka_topic_gone", error=err.str(), group=self.group)
            else:
                log.warning("kafka_consume_error", error=err.str(), group=self.group)

    async def _commit(self, done: list[Any]) -> None:
        """Commit the offsets after ``done`` (handled messages; a variant that hands out to tasks
        commits what they finished instead)."""
        if done:
            await asyncio.to_thread(commit_batch, self.consumer, done, group=self.group)

    async def _drain(self) -> None:
        """After the last turn, before leaving the group (a variant with tasks waits for them here)."""

    # ------------------------------------------------------------------ handing out
    async def _hand_out(self, batch: list[Any]) -> None:
        """Hand a fetched batch (readable messages, in order) to the handler; return once every
        message is handled or dead-lettered (the batch is then committed), raise :class:`Stopping`."""
        if self._raw_handler is not None:
            await self._attempt(self._raw_handler, batch, batch)
            return
        good = await self._decode(batch)
        if not good:
            return
        if self._batch_handler is not None:
            await self._attempt(self._batch_handler, good, good)
            return
        assert self._handler is not None
        for item in good:
            with bound_event(item.event):
                await self._attempt(self._handler, item, [item])

    async def _decode(self, batch: list[Any]) -> list[Received]:
        good: list[Received] = []
        bad: list[tuple[KafkaMessage, Any, str]] = []
        for msg in batch:
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
            stamp_type, stamp = msg.timestamp()
            try:
                event = self._decode_event(plain)
            except BindingError as exc:
                bad.append((plain, msg, f"unreadable: {exc}"))
                continue
            when = stamp if stamp_type and stamp > 0 else None
            good.append(Received(event, msg.topic(), msg.partition(), msg.offset(), plain, when))
        if bad:  # (a gather of nothing still costs a future per decoded message)
            await asyncio.gather(
                *(self.dead_letter(p, m.topic(), m.partition(), m.offset(), reason) for p, m, reason in bad)
            )
        if self._on_unreadable is not None:
            for plain, _, reason in bad:
                self._on_unreadable(plain, reason)
        return good

    async def _attempt(self, fn: Callable[[Any], Awaitable[None]], arg: Any, items: list[Any]) -> None:
        attempt = 0
        while True:
            try:
                await fn(arg)
                metrics.CONSUMED.labels(group=self.group, outcome="handled").inc(len(items))
                return
            except Stopping:
                raise
            except Exception as exc:
                attempt += 1
                retryable = self._retryable(exc)
                delay = min(self._backoff_max, self._backoff_base * (2 ** min(attempt - 1, 16)))
                log.warning(
                    "handler_failed",
                    group=self.group,
                    attempt=attempt,
                    retryable=retryable,
                    retry_in=delay,
                    error=f"{type(exc).__name__}: {exc}",
                )
                if not retryable and self._max_attempts is None:
                    raise
                if not retryable and attempt >= (self._max_attempts or 0):
                    reason = f"handler failed {attempt} times: {type(exc).__name__}: {exc}"
                    await asyncio.gather(*(self._dead_letter_item(item, reason) for item in items))
                    return
            await self.sleep(delay)

    async def _dead_letter_item(self, item: Any, reason: str) -> None:
        if isinstance(item, Received):
            await self.dead_letter(item.message, item.topic, item.partition, item.offset, reason)
            return
        plain = KafkaMessage(item.key(), item.value(), headers_from(item.headers()))
        await self.dead_letter(plain, item.topic(), item.partition(), item.offset(), reason)


def fetch_ready(consumer: Any, max_batch: int, timeout: float) -> list[Any]:
    """What ``consumer`` fetched already (up to ``max_batch``); else wait up to ``timeout`` for one
    message and take it with whatever came along. Never waits for a full batch: ``consume(n, t)``
    returns only when it has ``n`` messages or ``t`` passed, so a lone message would wait ``t``."""
    batch: list[Any] = consumer.consume(max_batch, 0)
    if batch:
        return batch
    first: list[Any] = consumer.consume(1, timeout)
    if not first or max_batch == 1:
        return first
    return [*first, *consumer.consume(max_batch - 1, 0)]


def _before(batch: list[Any], unhandled: Received | None) -> list[Any]:
    """The messages of ``batch`` fetched before ``unhandled`` (none when it is None)."""
    if unhandled is None:
        return []
    where = (unhandled.topic, unhandled.partition, unhandled.offset)
    for index, msg in enumerate(batch):
        if (msg.topic(), msg.partition(), msg.offset()) == where:
            return batch[:index]
    return []


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, WhaleError) and exc.retryable
