"""The request loop: bounded, concurrent, ordered per key, committing only what is done.

Requests of different keys run concurrently; requests with the same Kafka key (the idempotency
key) run one after the other. The committed offset of a partition is the lowest offset still in
progress, so after a crash everything unfinished is delivered again (and the state store turns the
redelivery of a finished request into a re-published result). When ``max_pending`` requests are in
progress the partitions are paused (the loop keeps polling, so the member stays in the group).

On a rebalance the requests of the revoked partitions get ``revoke_grace`` seconds to finish (the
revoke callback waits in the fetch thread while the event loop keeps running them); what finished
is committed, what is still running is cancelled, so the old owner has stopped before the new owner
reads the request again and resumes it as an interrupted run (never two runs at once). Lost
partitions (the session expired: another member may own them already) are cancelled at once.
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
from whale.errors import BindingError, WhaleError
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale_executor import metrics

log = structlog.get_logger(__name__)
Handler = Callable[[Received], Awaitable[None]]
TP = tuple[str, int]
COMMIT_INTERVAL = 0.2  # seconds between offset commits (only finished requests are committed)
MAX_POLL_INTERVAL_MS = 300_000  # a revoke callback must return well within this
REVOKE_POLL = 0.05  # seconds between looks at the revoked partitions' running requests
CANCEL_WAIT = 5.0  # seconds the revoke callback waits for cancelled requests to stop


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
        revoke_grace: float = 20.0,
    ) -> None:
        if not 0 <= revoke_grace <= MAX_POLL_INTERVAL_MS / 2000:
            raise ValueError(
                f"revoke_grace must be between 0 and {MAX_POLL_INTERVAL_MS / 2000:g} seconds (half of"
                f" max.poll.interval.ms, the time a rebalance waits for this member), got {revoke_grace:g}"
            )
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": auto_offset_reset,
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": 1_000,
                "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            }
        )
        self._topic = topic
        self._group = group_id
        self._producer = producer
        self._handler = handler
        self._pool = pool
        self._gauge = metrics.IN_FLIGHT.labels(pool=pool)  # set twice per request
        self._max_pending = max_pending
        self._max_attempts = max_attempts
        self._revoke_grace = revoke_grace
        self._lock = threading.Lock()  # guards the per-partition maps (revoke runs in the fetch thread)
        self._pending: dict[TP, set[int]] = {}
        self._running: dict[TP, dict[int, asyncio.Task[None]]] = {}  # unfinished, by offset
        self._owned: set[TP] = set()  # assigned and not revoked (written in the fetch thread)
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self._tails: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused = False
        self._stopping = asyncio.Event()
        self.assigned = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def stop(self) -> None:
        self._stopping.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, drain_timeout: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        last_commit = 0.0
        try:
            while not self._stopping.is_set():
                self._flow_control()
                batch = await asyncio.to_thread(self._fetch)
                for msg in batch:
                    if msg.error() is None:
                        if (msg.topic(), msg.partition()) in self._owned:
                            self._dispatch(msg)  # not a record of a partition revoked during the fetch
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
        key: bytes | None = msg.key()
        previous = self._tails.get(key) if key is not None else None
        plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
        task = asyncio.create_task(self._process(plain, tp, offset, previous))
        with self._lock:
            self._pending.setdefault(tp, set()).add(offset)
            self._running.setdefault(tp, {})[offset] = task
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        self._tasks.add(task)
        self._gauge.set(len(self._tasks))
        if key is not None:
            self._tails[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._gauge.set(len(self._tasks))
            if key is not None and self._tails.get(key) is t:
                del self._tails[key]
            with self._lock:
                running = self._running.get(tp)
                if running is None or running.get(offset) is not t:
                    return  # its partition was revoked meanwhile: nothing of it is ours to commit
                del running[offset]
                pending = self._pending.get(tp)
                if pending is not None and not t.cancelled():  # a cancelled request comes back
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
                    retryable = isinstance(exc, WhaleError) and exc.retryable
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
        with self._lock:
            self._owned |= {(p.topic, p.partition) for p in partitions}
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.assigned.set)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Let the revoked partitions' requests finish (up to the grace), commit, forget them."""
        revoked = {(p.topic, p.partition) for p in partitions}
        self._settle(revoked, self._revoke_grace)
        self._commit(revoked)
        self._forget(revoked)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Another member may run these already: stop their requests now; nothing can be committed."""
        lost = {(p.topic, p.partition) for p in partitions}
        log.warning("partitions_lost", partitions=sorted(p for _, p in lost))
        self._settle(lost, 0.0)
        self._forget(lost)

    def _forget(self, partitions: set[TP]) -> None:
        with self._lock:
            self._owned -= partitions
            for tp in partitions:
                self._pending.pop(tp, None)
                self._running.pop(tp, None)
                self._next.pop(tp, None)
                self._committed.pop(tp, None)
        self._paused = False

    def _running_in(self, partitions: set[TP]) -> list[asyncio.Task[None]]:
        with self._lock:
            return [t for tp in partitions for t in self._running.get(tp, {}).values()]

    def _wait_running(self, partitions: set[TP], seconds: float) -> list[asyncio.Task[None]]:
        """Poll until no request of ``partitions`` runs or ``seconds`` pass; return those still running."""
        deadline = time.monotonic() + seconds
        running = self._running_in(partitions)
        while running and time.monotonic() < deadline:
            time.sleep(REVOKE_POLL)
            running = self._running_in(partitions)
        return running

    def _settle(self, partitions: set[TP], grace: float) -> None:
        """In the revoke callback's thread: wait up to ``grace`` for the partitions' requests, cancel the
        rest on the loop and wait (briefly) until they stopped. The done callbacks run on the loop, which
        is free meanwhile because fetching happens in a worker thread."""
        loop = self._loop
        running = self._running_in(partitions)
        if loop is None or loop.is_closed() or not running:
            return  # nothing runs, or nothing can run any more
        on_loop = threading.get_ident() == self._loop_thread  # waiting there would block the requests
        log.info("revoke_waiting", requests=len(running), grace=grace)
        running = running if on_loop else self._wait_running(partitions, grace)
        if not running:
            log.info("revoke_settled")
            return
        log.warning("revoke_cancelling", requests=len(running), grace=grace)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing runs any more
            for task in running:
                loop.call_soon_threadsafe(task.cancel)
        unfinished = [] if on_loop else self._wait_running(partitions, CANCEL_WAIT)
        if unfinished:
            log.error("revoke_cancel_unfinished", requests=len(unfinished), waited=CANCEL_WAIT)

    def _flow_control(self) -> None:
        busy = len(self._tasks)
        if not self._paused and busy >= self._max_pending:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
        elif self._paused and busy < max(1, self._max_pending // 2):
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
