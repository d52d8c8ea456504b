"""Reading a changelog or compacted topic by assignment: a variant of the one consume loop.

A stage rebuilding (or catching up) its local state, and a compacted view following its topic
(:mod:`whale.compacted`), read with one confluent-kafka consumer made by :func:`open_reader` (no group
membership, nothing committed; :data:`CHANGELOG_READER`'s bounded prefetch). :class:`PartitionReader`
is :class:`whale.consumer.EventConsumer` -- the one loop, with its stopping, fatal errors, retry of
retryable handler errors and metrics -- overriding only how it

- attaches: ``assign`` each partition at its start offset (the reader is the caller's: left open);
- fetches: in line (its event loop is a private one, :func:`asyncio.run` in the reading thread,
  with nothing else to run); a rebuild fills batches of up to :data:`FETCH` records (fewer, larger
  WriteBatches: 10-15% less CPU for dedupe's small records), a follower takes what is fetched, so a
  live change is handed out at once; end-of-partition events say when every partition reached the end it had when
  the reading began (compaction may leave no record up to it); a fatal error raises
  :class:`KafkaException`;
- hands out: each batch whole, as one :class:`Fetched` (records, next offsets, caught up), to a
  synchronous ``take`` (a raw handler: nothing decoded);
- commits: nothing; ``take`` stores the offsets with the batch (e.g. in one RocksDB WriteBatch).

:func:`read_to_end` runs it to the end from a thread (a rebuild);
:func:`last_per_key` folds a batch so a key written many times in it is written once.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from whale.consumer import EventConsumer
from whale.dead_letter import Stopping

log = structlog.get_logger(__name__)
# Consumer settings for reading a changelog or compacted topic: librdkafka prefetches per partition
# until both queued.* limits are reached (by default 100,000 messages and 64 MiB, which measured
# +256 MiB RSS over a 1M-record rebuild); smaller limits bound a rebuild's memory, and a short
# fetch.queue.backoff.ms keeps them from pausing the fetcher for a second each time they are reached.
CHANGELOG_READER: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "queued.min.messages": 10_000,
    "queued.max.messages.kbytes": 8 << 10,
    "fetch.queue.backoff.ms": 10,
}
FETCH = 20_000  # records per batch (one consume() call, one WriteBatch)


def open_reader(config: Mapping[str, Any], purpose: str) -> Consumer:
    """A consumer for :func:`read_to_end` (``config``: the Kafka client settings; ``purpose``
    names its throw-away group id, never joined nor committed)."""
    return Consumer({**config, **CHANGELOG_READER, "group.id": f"{purpose}-{uuid.uuid4().hex}"})


def watermarks(
    reader: Consumer, topic: str, partitions: Sequence[int] | None = None, *, attempts: int = 30
) -> dict[int, tuple[int, int]]:
    """``(low, high)`` offsets of ``topic``'s ``partitions`` (None: all of them; a topic that does not
    exist has none), retried for a while: a topic just created takes a moment to answer."""
    for attempt in range(attempts):
        try:
            if partitions is None:
                meta = reader.list_topics(topic, timeout=10).topics.get(topic)
                if meta is None or meta.error is not None:
                    return {}  # never written (the stage creates it on first use)
                partitions = sorted(meta.partitions)
            return {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        except KafkaException as exc:
            if attempt == attempts - 1:
                raise
            log.info("changelog_not_ready", topic=topic, error=str(exc))
            time.sleep(1.0)
    return {}


@dataclass(frozen=True, slots=True)
class Fetched:
    """One batch of a :class:`PartitionReader`: the records fetched, in order (end-of-partition
    events left out), the next offset to read of each partition they cover, and whether every
    partition has reached the end it had when the reading began."""

    records: list[Any]
    offsets: dict[int, int]
    caught_up: bool


Take = Callable[[Fetched], None]


class PartitionReader(EventConsumer):
    """The records of ``topic`` from ``starts`` (partition -> first offset to read, or
    ``OFFSET_BEGINNING``) handed to ``take`` in batches of up to ``batch``, until every partition
    reached its ``ends`` offset (its high watermark when the reading began; records written
    meanwhile may come along) or, with ``follow``, for as long as it runs; a rebuild waits up to
    ``wait`` s to fill a batch, a follower only while nothing is fetched. The batch that reaches
    the end says so (an empty one when only end-of-partition events did; with ``follow`` and
    nothing to read, at once). Stops between batches once ``stop`` (or :meth:`stop`) is set."""

    def __init__(
        self,
        reader: Any,
        topic: str,
        starts: Mapping[int, int],
        ends: Mapping[int, int],
        take: Take,
        *,
        batch: int = FETCH,
        wait: float = 1.0,
        follow: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(
            None,
            group_id=f"read:{topic}",  # the metrics' label: no group is joined
            topics=[topic],
            producer=None,
            raw_handler=self._take_batch,
            max_batch=batch,
            poll_timeout=wait,
            max_attempts=None,  # a handler's error that is not retryable is raised out of run()
            before_fetch=self._check_stop,
            consumer=reader,
        )
        self._topic = topic
        self._starts = dict(starts)
        self._ends = dict(ends)
        self._take = take
        self._follow = follow
        self._stop_flag = stop
        self._pending = {p for p, start in starts.items() if ends.get(p, 0) > max(start, 0)}
        self._announced = False  # the batch that reached the end was handed out

    async def _attach(self) -> None:
        if not self._follow and not self._pending:
            self.stop()  # nothing to read
            return
        assigned = sorted(self._starts if self._follow else self._pending)
        self.consumer.assign([TopicPartition(self._topic, p, self._starts[p]) for p in assigned])
        await self._idle()  # a follower with nothing to read is caught up at once

    async def _detach(self) -> None:
        """The reader is the caller's: nothing to leave, nothing to close."""

    async def _check_stop(self) -> None:
        if self._stop_flag is not None and self._stop_flag.is_set():
            self.stop()

    async def sleep(self, seconds: float) -> None:
        """:meth:`EventConsumer.sleep` (a retry's backoff) that also ends once ``stop`` is set."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await self._check_stop()
            await super().sleep(min(left, 0.2))

    async def _poll(self) -> list[Any]:
        """Fetch in line: the reader's event loop is its own, with nothing else to run meanwhile
        (and the records are handled on the thread that fetched them)."""
        return self._fetch()

    def _fetch(self) -> list[Any]:
        if self._follow:
            return super()._fetch()
        fetched: list[Any] = self.consumer.consume(self._max_batch, self._poll_timeout)
        return fetched

    def _failed(self, events: list[Any]) -> None:
        super()._failed(events)  # logged
        self._pending -= _ended(events)

    async def _idle(self) -> None:
        if not self._pending and not self._announced:
            try:
                await self._attempt(self._deliver, Fetched([], {}, True), [])
            except Stopping:
                return  # stopped while retrying: the loop ends at its next turn

    async def _take_batch(self, records: list[Any]) -> None:
        offsets = {m.partition(): m.offset() + 1 for m in records}
        self._pending -= {p for p, nxt in offsets.items() if nxt >= self._ends.get(p, 0)}
        await self._deliver(Fetched(records, offsets, not self._pending))

    async def _deliver(self, fetched: Fetched) -> None:
        self._take(fetched)
        if fetched.caught_up:
            self._announced = True
            if not self._follow:
                self.stop()

    async def _commit(self, done: list[Any]) -> None:
        """Nothing to commit: ``take`` stored the batch's offsets with it."""


def read_to_end(
    reader: Any,
    topic: str,
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    take: Take,
    *,
    batch: int = FETCH,
    stop: threading.Event | None = None,
) -> None:
    """A :class:`PartitionReader` run until every partition reached its end (a rebuild or catch-up),
    on a private event loop: call it from a thread without one (``take`` runs on that thread)."""
    asyncio.run(PartitionReader(reader, topic, starts, ends, take, batch=batch, stop=stop).run())


def _ended(events: Sequence[Any]) -> set[int]:
    """The partitions whose end-of-partition event is among the error ``events`` of a fetch; a
    fatal error raises."""
    ended: set[int] = set()
    for msg in events:
        err = msg.error()
        if err.code() == KafkaError._PARTITION_EOF:
            ended.add(msg.partition())
        elif err.fatal():
            raise KafkaException(err)
    return ended


def last_per_key(records: Sequence[Any]) -> dict[bytes, bytes | None]:
    """A batch of one partition's records folded to each key's last value (None: a tombstone)."""
    return {msg.key() or b"": msg.value() for msg in records}
