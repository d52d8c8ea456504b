"""The middleware's background producer: a bounded queue drained by a worker thread.

The request path only enqueues a :class:`Capture` (no rendering, no I/O). When the queue is full
the configured policy applies: ``drop`` counts and logs the drop and returns at once, ``block``
waits up to ``block_timeout`` for room (then drops). A worker thread running its own event loop
renders, validates (the event center's rules, see :mod:`whale_adapters.validation`) and sends
concurrently to ``whale.ingest``; :meth:`BackgroundPublisher.close` flushes what is queued.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from whale.compacted import CompactedView
from whale.errors import DeliveryError, WhaleError
from whale.metrics import into_default_registry
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale_adapters import metrics
from whale_adapters.errors import PayloadError
from whale_adapters.ingest import IngestWriter
from whale_adapters.middleware.mapping import Capture, Router
from whale_adapters.validation import EventValidator, start_schema_view

log = structlog.get_logger(__name__)
ProducerFactory = Callable[[], EventProducer]
MAX_CONCURRENT_SENDS = 1000
IDLE_MIN, IDLE_MAX = 0.001, 0.05


@dataclass(slots=True)
class Counts:
    """What happened to the captured calls (also exported as Prometheus metrics)."""

    queued: int = 0
    dropped: int = 0
    published: int = 0
    invalid: int = 0
    failed: int = 0


class BackgroundPublisher:
    """Publishes captured API calls without delaying responses; thread-safe; start is idempotent."""

    def __init__(
        self, settings: WhaleSettings, router: Router, *, producer_factory: ProducerFactory | None = None
    ) -> None:
        self._settings = settings
        self.router = router
        self.config = router.config
        self._factory = producer_factory or (
            lambda: EventProducer(settings, client_id="whale-middleware", max_in_flight=MAX_CONCURRENT_SENDS)
        )
        self._queue: queue.Queue[Capture] = queue.Queue(maxsize=self.config.queue_size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts = Counts()
        self._label = self.config.source

    # ------------------------------------------------------------------ request-path side
    def start(self) -> None:
        """Start the worker once (also flushed at interpreter exit if the app never shuts down)."""
        into_default_registry(metrics.MIDDLEWARE)  # the host application's /metrics shows them
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._main, name="whale-middleware", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def offer(self, capture: Capture) -> bool:
        """Enqueue (blocking per policy: for WSGI); False when the call was dropped."""
        settled = self._offer_now(capture)
        if settled is not None:
            return settled
        return self._settle(self._wait_for_room(capture))

    async def offer_async(self, capture: Capture) -> bool:
        """Enqueue without blocking the event loop (for ASGI); False when dropped."""
        settled = self._offer_now(capture)
        if settled is not None:
            return settled
        return self._settle(await asyncio.to_thread(self._wait_for_room, capture))

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued and in flight, then stop the worker (application shutdown)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("middleware_flush_timeout", pending=self._queue.qsize(), timeout=timeout)

    def _offer_now(self, capture: Capture) -> bool | None:
        """Queued (True) or dropped (False) without waiting; None: full, and the policy is to wait."""
        self.start()
        if self.closed:
            return self._dropped()
        try:
            self._queue.put_nowait(capture)
        except queue.Full:
            return self._dropped() if self.config.when_full == "drop" else None
        return self._queued()

    def _wait_for_room(self, capture: Capture) -> bool:
        """Enqueue, waiting up to ``block_timeout`` for room; False when there was none."""
        try:
            self._queue.put(capture, True, self.config.block_timeout)
        except queue.Full:
            return False
        return True

    def _settle(self, queued: bool) -> bool:
        return self._queued() if queued else self._dropped()

    def _queued(self) -> bool:
        self.counts.queued += 1
        metrics.MIDDLEWARE_EVENTS.labels(source=self._label, outcome="queued").inc()
        metrics.MIDDLEWARE_QUEUE.labels(source=self._label).set(self._queue.qsize())
        return True

    def _dropped(self) -> bool:
        self.counts.dropped += 1
        metrics.MIDDLEWARE_EVENTS.labels(source=self._label, outcome="dropped").inc()
        log.warning(
            "middleware_event_dropped",
            source=self._label,
            queue_size=self.config.queue_size,
            dropped_total=self.counts.dropped,
        )
        return False

    # ------------------------------------------------------------------ worker side
    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        view = await self._schemas()
        producer = self._factory()
        writer = IngestWriter(producer, EventValidator(view))
        room = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
        tasks: set[asyncio.Task[None]] = set()
        try:
            idle = IDLE_MIN
            while True:
                # polled, not a blocking get in an executor thread: executors refuse work during
                # interpreter exit, when the atexit flush still has to drain the queue
                try:
                    first = self._queue.get_nowait()
                    idle = IDLE_MIN
                except queue.Empty:
                    if self._stop.is_set():
                        break
                    await asyncio.sleep(idle)
                    idle = min(idle * 2, IDLE_MAX)
                    continue
                batch = [first]
                while len(batch) < MAX_CONCURRENT_SENDS:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                metrics.MIDDLEWARE_QUEUE.labels(source=self._label).set(self._queue.qsize())
                for capture in batch:
                    await room.acquire()
                    task = asyncio.create_task(self._one(writer, capture))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    task.add_done_callback(lambda _: room.release())
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            producer.close()
            if view is not None:
                with contextlib.suppress(RuntimeError):  # no executor at interpreter exit: daemon thread
                    await view.stop()

    async def _schemas(self) -> CompactedView | None:
        if not self.config.validate_schemas:
            return None
        while True:
            try:
                return await start_schema_view(self._settings)
            except RuntimeError as exc:  # the interpreter exits before the view started
                log.warning("middleware_schemas_skipped_at_exit", error=str(exc))
                return None
            except WhaleError as exc:
                log.error("middleware_schemas_unavailable", error=str(exc))
                if self._stop.is_set():
                    return None
                await asyncio.sleep(2.0)

    async def _one(self, writer: IngestWriter, capture: Capture) -> None:
        try:
            event = self.router.build_event(capture)
            published = await writer.publish_or_dead_letter(event, adapter="middleware")
        except PayloadError as exc:
            self._count("invalid")
            log.warning("middleware_event_invalid", source=self._label, reason=exc.message)
            return
        except DeliveryError as exc:
            self._count("failed")
            log.error("middleware_event_not_delivered", source=self._label, error=exc.message)
            return
        self._count("published" if published else "invalid")

    def _count(self, outcome: str) -> None:
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        metrics.MIDDLEWARE_EVENTS.labels(source=self._label, outcome=outcome).inc()
