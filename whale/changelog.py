"""Reading a changelog topic in bulk, from the offsets a local store applied to the topic's end.

A stage rebuilding (or catching up) its local state reads the changelog with one confluent-kafka
consumer (no group membership, nothing committed; :data:`CHANGELOG_READER`'s bounded
prefetch) in batches of up to :data:`FETCH` records, and writes each batch with its offsets in one
RocksDB WriteBatch. :func:`read` is that loop, for a rebuild (to the end: :func:`read_to_end`) and
for the compacted views that keep following their topic (:mod:`whale.compacted`);
:func:`last_per_key` folds a batch so a key written many times in it is written once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from whale.consumer import fetch_ready

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
    """One turn of :func:`read`: the records fetched, in order (end-of-partition events left out),
    the next offset to read of each partition they cover, and whether every partition has reached
    the end it had when the reading began."""

    records: list[Any]
    offsets: dict[int, int]
    caught_up: bool


def read(
    reader: Consumer,
    topic: str,
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    *,
    batch: int = FETCH,
    wait: float = 1.0,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Fetched]:
    """The one loop reading a changelog or compacted topic: the records of ``topic`` from ``starts``
    (partition -> first offset to read, or ``OFFSET_BEGINNING``) in batches of up to ``batch``
    (waiting up to ``wait`` s to fill one; with ``follow``, what is already fetched, waiting only
    while nothing is), until every partition reached its ``ends`` offset (its high watermark when
    the reading began; records written meanwhile may come along) or, with ``follow``, for as long
    as it runs: then every turn is
    yielded, empty or not, the first one as soon as the end is reached. Stops between batches once
    ``stop`` is set; a fatal Kafka error raises :class:`KafkaException`."""
    pending = {p for p, start in starts.items() if ends.get(p, 0) > max(start, 0)}
    if not follow and not pending:
        return
    assigned = sorted(starts if follow else pending)
    reader.assign([TopicPartition(topic, p, starts[p]) for p in assigned])
    if follow and not pending:
        yield Fetched([], {}, True)
    while (follow or pending) and not (stop is not None and stop.is_set()):
        # a rebuild fills its batches (fewer, larger WriteBatches: 10-15% less CPU for dedupe's small
        # records); a follower takes what is fetched, so a live change is handed out at once
        fetched: list[Any] = fetch_ready(reader, batch, wait) if follow else reader.consume(batch, wait)
        records = [m for m in fetched if m.error() is None]
        if len(records) < len(fetched):
            pending -= _ended(fetched)
        offsets = {m.partition(): m.offset() + 1 for m in records}
        was_pending = bool(pending)
        pending -= {p for p, nxt in offsets.items() if nxt >= ends.get(p, 0)}
        if follow or records or (was_pending and not pending):
            yield Fetched(records, offsets, not pending)


def read_to_end(
    reader: Consumer,
    topic: str,
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    *,
    batch: int = FETCH,
    stop: threading.Event | None = None,
) -> Iterator[Fetched]:
    """:func:`read` until every partition reached its end (a rebuild or catch-up)."""
    return read(reader, topic, starts, ends, batch=batch, stop=stop)


def _ended(fetched: Sequence[Any]) -> set[int]:
    """The partitions whose end-of-partition event is among ``fetched``; a fatal error raises."""
    ended: set[int] = set()
    for msg in fetched:
        err = msg.error()
        if err is None:
            continue
        if err.code() == KafkaError._PARTITION_EOF:
            ended.add(msg.partition())
        elif err.fatal():
            raise KafkaException(err)
    return ended


def last_per_key(records: Sequence[Any]) -> dict[bytes, bytes | None]:
    """A batch of one partition's records folded to each key's last value (None: a tombstone)."""
    return {msg.key() or b"": msg.value() for msg in records}
