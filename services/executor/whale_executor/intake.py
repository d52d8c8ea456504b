"""The request loop: bounded, concurrent, ordered per key, committing only what is done.

Requests of different keys run concurrently; requests with the same Kafka key (the idempotency
key) run one after the other. The committed offset of a partition is the lowest offset still in
progress, so after a crash everything unfinished is delivered again (and the state store turns the
redelivery of a finished request into a re-published result). When ``max_pending`` requests are in
progress the partitions are paused (the loop keeps polling, so the member stays in the group).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from confluent_kafka import Consumer, TopicPartition

from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.consumer import Received, write_dead_letter
from whale.errors import BindingError
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale_executor import metrics

log = structlog.get_logger("whale.executor.intake")
Handler = Callable[[Received], Awaitable[None]]
TP = tuple[str, int]
COMMIT_INTERVAL = 0.2  # seconds between offset commits (only finished requests are committed)


class Intake:
    def __init__(
        self,
        settings: WhaleSettings,
        *,
        topic: str,
        group_id: str,
        producer: EventProducer,
        handler: Handler,
        pool: str,
        max_pending: int = 1000,
        session_timeout_ms: int = 10_000,
        max_attempts: int = 3,
        auto_offset_reset: str = "earliest",
    ) -> None:
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": auto_offset_reset,
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": 1_000,
                "max.poll.interval.ms": 300_000,
            }
        )
        self._topic = topic
        self._group = group_id
        self._producer = producer
        self._handler = handler
        self._pool = pool
        self._max_pending = max_pending
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._pending: dict[TP, set[int]] = {}
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self._tails: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused = False
        self._stopping = asyncio.Event()
        self.assigned = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        self._stopping.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, drain_timeout: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._consumer.subscribe([self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        last_commit = 0.0
        try:
            while not self._stopping.is_set():
                self._flow_control()
                batch = await asyncio.to_thread(self._fetch)
                for msg in batch:
                    if msg.error() is None:
                        self._dispatch(msg)
                    else:
                        log.warning("kafka_consume_error", error=str(msg.error()))
                if time.monotonic() - last_commit >= COMMIT_INTERVAL:
                    last_commit = time.monotonic()
                    await asyncio.to_thread(self._commit)
            if self._tasks:
                _, late = await asyncio.wait(set(self._tasks), timeout=drain_timeout)
                for task in late:  # their state is recorded; the uncommitted requests come back
                    task.cancel()
                for task in late:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            await asyncio.to_thread(self._commit)
        finally:
            await asyncio.to_thread(self._consumer.close)

    def _fetch(self) -> list[Any]:
        """What is ready now, else wait up to 0.1 s for the next message (never for a full batch)."""
        batch: list[Any] = self._consumer.consume(200, 0)
        if batch:
            return batch
        first = self._consumer.poll(0.1)
        return [] if first is None else [first, *self._consumer.consume(199, 0)]

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, msg: Any) -> None:
        tp = (msg.topic(), msg.partition())
        offset = msg.offset()
        with self._lock:
            self._pending.setdefault(tp, set()).add(offset)
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        key: bytes | None = msg.key()
        previous = self._tails.get(key) if key is not None else None
        plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
        task = asyncio.create_task(self._process(plain, tp, offset, previous))
        self._tasks.add(task)
        metrics.IN_FLIGHT.labels(pool=self._pool).set(len(self._tasks))
        if key is not None:
            self._tails[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            metrics.IN_FLIGHT.labels(pool=self._pool).set(len(self._tasks))
            if key is not None and self._tails.get(key) is t:
                del self._tails[key]
            with self._lock:
                pending = self._pending.get(tp)
                if pending is not None and not t.cancelled():
                    pending.discard(offset)

        task.add_done_callback(done)

    async def _process(
        self, plain: KafkaMessage, tp: TP, offset: int, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        try:
            event = from_kafka(plain)
        except BindingError as exc:
            await self._dead_letter(plain, tp, offset, f"unreadable: {exc}")
            return
        received = Received(event, tp[0], tp[1], offset, plain)
        attempt = 0
        with bound_event(event):
            while True:
                try:
                    await self._handler(received)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    attempt += 1
                    retryable = bool(getattr(exc, "retryable", False))
                    log.warning(
                        "request_failed",
                        attempt=attempt,
                        retryable=retryable,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    if not retryable and attempt >= self._max_attempts:
                        await self._dead_letter(
                            plain, tp, offset, f"handler failed {attempt} times: {type(exc).__name__}: {exc}"
                        )
                        return
                await asyncio.sleep(min(10.0, 0.2 * 2 ** min(attempt, 6)))

    async def _dead_letter(self, plain: KafkaMessage, tp: TP, offset: int, reason: str) -> None:
        await write_dead_letter(
            self._producer,
            plain,
            reason=reason,
            topic=tp[0],
            partition=tp[1],
            offset=offset,
            group=self._group,
        )

    # ------------------------------------------------------------------ offsets and flow control
    def _positions(self, only: set[TP] | None = None) -> list[TopicPartition]:
        out: list[TopicPartition] = []
        with self._lock:
            for tp, next_offset in self._next.items():
                if only is not None and tp not in only:
                    continue
                pending = self._pending.get(tp)
                position = min(pending) if pending else next_offset
                if position > self._committed.get(tp, -1):
                    out.append(TopicPartition(tp[0], tp[1], position))
        return out

    def _commit(self, only: set[TP] | None = None) -> None:
        offsets = self._positions(only)
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # rebalanced away: the new owner re-reads (at-least-once)
            log.warning("commit_failed", error=str(exc))
            return
        with self._lock:
            for tp in offsets:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.assigned.set)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        self._commit(revoked)
        with self._lock:
            for tp in revoked:
                self._pending.pop(tp, None)
                self._next.pop(tp, None)
                self._committed.pop(tp, None)
        self._paused = False

    def _flow_control(self) -> None:
        busy = len(self._tasks)
        if not self._paused and busy >= self._max_pending:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
        elif self._paused and busy < max(1, self._max_pending // 2):
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
