"""Materialised views of compacted topics (schemas, rules, catalogues, subscriptions, state).

A record of a compacted topic is a CloudEvent in binary mode whose Kafka key is the entity's id and
whose data is the entity's whole current state; a tombstone (no value) deletes the entity. A view
reads its topic from the beginning (no consumer group, nothing committed), is caught up when
:meth:`CompactedView.start` returns, and keeps following the topic so every replica sees changes live.
It reads with the one consume loop's variant for assigned partitions
(:class:`whale.changelog.PartitionReader`, following), run on a private event loop in the view's
own thread: the view's callbacks are synchronous, and the view is used from sync code too.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException

from whale import changelog
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.changelog import open_reader, watermarks
from whale.cloudevent import CloudEvent
from whale.errors import BindingError, WhaleError
from whale.producer import Delivered, EventProducer
from whale.settings import WhaleSettings
from whale.store import LocalStore

log = structlog.get_logger(__name__)
OnChange = Callable[[str, CloudEvent | None], None]
CHANGELOG_BATCH = 10_000  # records per consume() call (and per local-store WriteBatch)


class CompactedFollower:
    """Reads one compacted topic from the beginning in a background thread, then keeps following it.

    Subclasses handle each keyed record in :meth:`_record`; records whose key lacks ``key_prefix``
    are skipped before anything is decoded. A subclass that keeps its state in a :class:`LocalStore`
    returns it from :meth:`_local`: the follower then starts each partition at the offset the store
    applied instead of the beginning, and calls :meth:`_applied` with the next offsets after every
    batch of records (between :meth:`_begin` and it, the subclass stages its writes).
    """

    def __init__(self, settings: WhaleSettings, topic: str, *, key_prefix: bytes = b"") -> None:
        self._settings = settings
        self._topic = topic
        self._key_prefix = key_prefix
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None
        self._applying: LocalStore | None = None  # the local store the reading resumes from
        self._gc_paused = False
        self.records_read = 0  # with our key prefix, since start (a local store: those it had not applied)
        # True while reading what was written before start(): a local store is then written without
        # its write-ahead log (see LocalStore.write) and flushed once caught up
        self.catching_up = False

    async def start(self, timeout: float = 60.0) -> None:
        """Start following the topic; returns once everything written before the call was read.

        May be called again after it raised: a reader that failed is replaced by a fresh one, a
        reader still catching up (the timeout passed) is waited for again.
        """
        if self._thread is None or not self._thread.is_alive():
            self._error = None
            self._caught_up.clear()
            self._stop.clear()
            self._thread = threading.Thread(target=self._follow, name=f"follow-{self._topic}", daemon=True)
            self._thread.start()
        ok = await asyncio.to_thread(self._caught_up.wait, timeout)
        if self._error is not None:
            raise WhaleError(f"cannot read {self._topic}: {self._error}")
        if not ok:
            raise WhaleError(f"reading {self._topic} did not catch up within {timeout}s")

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    def _record(self, key: bytes, msg: Any) -> None:
        """Handle one record (``msg.value()`` None is a tombstone); called on the follower thread."""
        raise NotImplementedError

    def _local(self, cluster: str | None) -> LocalStore | None:
        """The local store to resume from (None: read from the beginning, keep state in memory)."""
        return None

    def _begin(self) -> None:
        """A batch of records follows (with a local store)."""

    def _applied(self, offsets: dict[int, int]) -> None:
        """The batch's records are handled; ``offsets``: next offset per partition it covered."""

    def _follow(self) -> None:
        """Every partition from the beginning, or from its local store's offsets (no group, nothing
        committed), then follow (:class:`whale.changelog.PartitionReader`, handing each batch to :meth:`_turn`)."""
        consumer = open_reader(self._settings.kafka_config(), "whale-view")
        self._applying = None
        self._gc_paused = False
        try:
            ranges = watermarks(consumer, self._topic)
            if not ranges:
                raise WhaleError(f"topic {self._topic} does not exist (run `whale topics ensure`)")
            local = self._applying = self._local(cluster_id(consumer))
            starts = {p: OFFSET_BEGINNING for p in ranges}
            if local is not None:
                local.check_offsets(ranges)
                starts = {p: max(local.offset(p), low) for p, (low, _) in ranges.items()}
            ends = {p: high for p, (_, high) in ranges.items()}
            self.catching_up = any(end > max(starts[p], 0) for p, end in ends.items())
            if local is not None and self.catching_up:
                pause_gc()  # until caught up
                self._gc_paused = True
            # a live change is read at once: wait for one at most 0.2 s between stop checks
            reading = changelog.PartitionReader(consumer, self._topic, starts, ends, self._turn,
                                                batch=CHANGELOG_BATCH, wait=0.2, follow=True, stop=self._stop)  # fmt: skip
            asyncio.run(reading.run())
        except (KafkaException, WhaleError) as exc:
            self._error = exc
            self._caught_up.set()
        finally:
            if self._gc_paused:
                resume_gc()
                self._gc_paused = False
            consumer.close()
            if self._applying is not None and self.catching_up:
                self.catching_up = False
                self._applying.flush()

    def _turn(self, fetched: changelog.Fetched) -> None:
        """Handle one fetched batch: its records, then its offsets (with a local store); once caught
        up, flush the local store, start its deferred compaction in the background (a rebuild) and
        tell :meth:`start`."""
        local = self._applying
        handled = False
        if local is not None and fetched.records:
            self._begin()
        try:
            self._take(fetched.records)
            handled = True
        finally:
            if local is not None and fetched.records:
                self._applied(fetched.offsets if handled else {})
        if self.catching_up and fetched.caught_up:
            if local is not None:
                local.flush()  # the catch-up's writes skipped the write-ahead log
                local.compact()  # when the store deferred it (a rebuild), in the background: serves meanwhile
            self.catching_up = False
        if fetched.caught_up and not self._caught_up.is_set():
            self._caught_up.set()  # after the last batch is applied to the local store
            if self._gc_paused:
                resume_gc()
                self._gc_paused = False

    def _take(self, records: list[Any]) -> None:
        """Handle one fetched batch of records (their offsets are applied after it). By default each
        keyed record goes to :meth:`_record`; a subclass may take a whole batch at once (a rebuild)."""
        for msg in records:
            self._keyed(msg)

    def _keyed(self, msg: Any) -> None:
        key = msg.key()
        if key is None:
            log.warning("compacted_record_without_key", topic=self._topic, offset=msg.offset())
        elif key.startswith(self._key_prefix):
            self.records_read += 1
            self._record(key, msg)


_gc_lock = threading.Lock()
_gc_pauses = 0  # followers catching up with the collector paused
_gc_was_enabled = False


def pause_gc() -> None:
    """Pause Python's cyclic garbage collector while a follower with a local store catches up: the
    fetched messages (10,000 a batch) are objects it tracks, and traversing them again and again
    took about a tenth of a rebuild's Python time. Counted, so it resumes when the last follower
    pausing it has caught up (:func:`resume_gc`); left off if something else had turned it off."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1


def resume_gc() -> None:
    """Undo one :func:`pause_gc`."""
    global _gc_pauses
    with _gc_lock:
        _gc_pauses -= 1
        if _gc_pauses == 0 and _gc_was_enabled:
            gc.enable()


def cluster_id(consumer: Consumer) -> str | None:
    """The Kafka cluster's id (part of a local store's identity)."""
    found: str | None = consumer.list_topics(timeout=30).cluster_id
    return found


class CompactedView(CompactedFollower):
    """key -> latest CloudEvent of one compacted topic, followed in a background thread."""

    def __init__(self, settings: WhaleSettings, topic: str, *, on_change: OnChange | None = None) -> None:
        super().__init__(settings, topic)
        self._on_change = on_change
        self._items: dict[str, CloudEvent] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def get(self, key: str) -> CloudEvent | None:
        with self._lock:
            return self._items.get(key)

    def items(self) -> dict[str, CloudEvent]:
        """A snapshot copy of the view."""
        with self._lock:
            return dict(self._items)

    def wait_for(self, predicate: Callable[[dict[str, CloudEvent]], bool], timeout: float) -> bool:
        """Block until ``predicate(view)`` is true (e.g. a write made elsewhere became visible)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._items), timeout)

    def _record(self, raw_key: bytes, msg: Any) -> None:
        key = raw_key.decode("utf-8", "replace")
        event: CloudEvent | None = None
        if msg.value() is not None or msg.headers():
            try:
                event = from_kafka(KafkaMessage(raw_key, msg.value(), headers_from(msg.headers())))
            except BindingError as exc:
                log.warning("compacted_record_unreadable", topic=self._topic, key=key, error=str(exc))
                return
        with self._changed:
            if event is None:
                self._items.pop(key, None)
            else:
                self._items[key] = event
            self._changed.notify_all()
        if self._on_change is not None:
            try:
                self._on_change(key, event)
            except Exception as exc:  # a listener's bug must not stop the view
                log.error("view_listener_failed", topic=self._topic, key=key, error=str(exc))


async def put(producer: EventProducer, topic: str, key: str, event: CloudEvent) -> Delivered:
    """Write the whole current state of entity ``key`` (acknowledged)."""
    return await producer.send(topic, event, key=key)


async def delete(producer: EventProducer, topic: str, key: str) -> Delivered:
    """Write a tombstone for entity ``key`` (acknowledged)."""
    return await producer.send_message(topic, KafkaMessage(key.encode("utf-8"), None, ()))
