"""The per-key ordered variant of the one consume loop: bounded, concurrent, committing only what is done.

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

Polling, decoding, retries and dead letters are :class:`whale.consumer.EventConsumer`'s; this
variant only hands each message to a task chained behind its key's previous one and commits on a
timer. On :meth:`EventConsumer.stop` the running requests get ``drain_timeout`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from confluent_kafka import TopicPartition

from whale.binding import KafkaMessage, from_kafka
from whale.cloudevent import CloudEvent
from whale.consumer import EventConsumer, Handler
from whale.dead_letter import Stopping
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.settings import WhaleSettings

log = structlog.get_logger(__name__)
TP = tuple[str, int]
COMMIT_INTERVAL = 0.2  # seconds between offset commits (only finished requests are committed)
MAX_POLL_INTERVAL_MS = 300_000  # a revoke callback must return well within this
REVOKE_POLL = 0.05  # seconds between looks at the revoked partitions' running requests
CANCEL_WAIT = 5.0  # seconds the revoke callback waits for cancelled requests to stop


class KeyedConsumer(EventConsumer):
    """One task per message, chained per key; ``on_in_flight`` is told the number of requests in
    progress whenever it changes (e.g. a gauge's ``set``); ``assigned`` is set once partitions are."""

    def __init__(
        self,
        settings: WhaleSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        producer: EventProducer,
        handler: Handler,
        max_pending: int = 1000,
        max_attempts: int = 3,
        session_timeout_ms: int = 10_000,
        auto_offset_reset: str = "earliest",
        revoke_grace: float = 20.0,
        drain_timeout: float = 10.0,
        backoff_base: float = 0.2,
        on_in_flight: Callable[[int], None] | None = None,
        decode: Callable[[KafkaMessage], CloudEvent] = from_kafka,
    ) -> None:
        if not 0 <= revoke_grace <= MAX_POLL_INTERVAL_MS / 2000:
            raise ValueError(
                f"revoke_grace must be between 0 and {MAX_POLL_INTERVAL_MS / 2000:g} seconds (half of"
                f" max.poll.interval.ms, the time a rebalance waits for this member), got {revoke_grace:g}"
            )
        super().__init__(
            settings,
            group_id=group_id,
            topics=topics,
            producer=producer,
            handler=handler,
            max_batch=200,
            poll_timeout=0.1,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            auto_offset_reset=auto_offset_reset,
            extra={"session.timeout.ms": session_timeout_ms, "max.poll.interval.ms": MAX_POLL_INTERVAL_MS},
            before_fetch=self._housekeeping,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
            decode=decode,
        )
        self._max_pending = max_pending
        self._revoke_grace = revoke_grace
        self._drain_timeout = drain_timeout
        self._on_in_flight = on_in_flight
        self._lock = threading.Lock()  # guards the per-partition maps (revoke runs in the fetch thread)
        self._pending: dict[TP, set[int]] = {}
        self._running: dict[TP, dict[int, asyncio.Task[None]]] = {}  # unfinished, by offset
        self._owned: set[TP] = set()  # assigned and not revoked (written in the fetch thread)
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self._tails: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused = False
        self._last_commit = 0.0
        self.assigned = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await super().run()

    # ------------------------------------------------------------------ handing out
    async def _hand_out(self, batch: list[Any]) -> None:
        """Start a task per message of a partition still ours (not revoked during the fetch)."""
        for msg in batch:
            if (msg.topic(), msg.partition()) in self._owned:
                self._dispatch(msg)

    def _dispatch(self, msg: Any) -> None:
        tp = (msg.topic(), msg.partition())
        offset = msg.offset()
        key: bytes | None = msg.key()
        previous = self._tails.get(key) if key is not None else None
        task = asyncio.create_task(self._process(msg, previous))
        with self._lock:
            self._pending.setdefault(tp, set()).add(offset)
            self._running.setdefault(tp, {})[offset] = task
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        self._tasks.add(task)
        self._report()
        if key is not None:
            self._tails[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._report()
            if key is not None and self._tails.get(key) is t:
                del self._tails[key]
            finished = not t.cancelled() and t.exception() is None  # else the request comes back
            if not t.cancelled() and not isinstance(t.exception(), Stopping | None):
                log.error("request_crashed", group=self.group, error=repr(t.exception()))
            with self._lock:
                running = self._running.get(tp)
                if running is None or running.get(offset) is not t:
                    return  # its partition was revoked meanwhile: nothing of it is ours to commit
                del running[offset]
                pending = self._pending.get(tp)
                if pending is not None and finished:
                    pending.discard(offset)

        task.add_done_callback(done)

    async def _process(self, msg: Any, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait({previous})
            if self._stopping.is_set() and (previous.cancelled() or previous.exception() is not None):
                raise Stopping  # the key's earlier request did not finish: this one must not pass it
        good = await self._decode([msg])
        if not good:
            return  # dead-lettered as unreadable
        assert self._handler is not None
        with bound_event(good[0].event):
            await self._attempt(self._handler, good[0], good)

    def _report(self) -> None:
        if self._on_in_flight is not None:
            self._on_in_flight(len(self._tasks))

    async def _drain(self) -> None:
        """Stopping: give the running requests ``drain_timeout``, cancel the rest, commit."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self._drain_timeout)
            for task in late:  # their state is recorded; the uncommitted requests come back
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await asyncio.to_thread(self._commit_positions)

    # ------------------------------------------------------------------ offsets and flow control
    async def _housekeeping(self) -> None:
        """Before each fetch: pause or resume the partitions, commit what finished (on the timer)."""
        self._flow_control()
        await self._commit([])

    async def _commit(self, done: list[Any]) -> None:
        """Commit, at most every ``COMMIT_INTERVAL``, the lowest offset in progress per partition."""
        if time.monotonic() - self._last_commit >= COMMIT_INTERVAL:
            self._last_commit = time.monotonic()
            await asyncio.to_thread(self._commit_positions)

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

    def _commit_positions(self, only: set[TP] | None = None) -> None:
        offsets = self._positions(only)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # rebalanced away: the new owner re-reads (at-least-once)
            log.warning("commit_failed", error=str(exc), group=self.group)
            return
        with self._lock:
            for tp in offsets:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def _flow_control(self) -> None:
        busy = len(self._tasks)
        if not self._paused and busy >= self._max_pending:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True
        elif self._paused and busy < max(1, self._max_pending // 2):
            self.consumer.resume(self.consumer.assignment())
            self._paused = False

    # ------------------------------------------------------------------ rebalance (fetch thread)
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self._owned |= {(p.topic, p.partition) for p in partitions}
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.assigned.set)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Let the revoked partitions' requests finish (up to the grace), commit, forget them."""
        revoked = {(p.topic, p.partition) for p in partitions}
        self._settle(revoked, self._revoke_grace)
        self._commit_positions(revoked)
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
