"""Reading a changelog topic in bulk, from the offsets a local store applied to the topic's end.

A stage rebuilding (or catching up) its local state reads the changelog with one confluent-kafka
consumer (no group membership, nothing committed; :data:`CHANGELOG_READER`'s bounded
prefetch) in batches of up to :data:`FETCH` records, and writes each batch with its offsets in one
RocksDB WriteBatch. :func:`read_to_end` is that loop; :func:`last_per_key` folds a batch so a key
written many times in it is written once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

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


def read_to_end(
    reader: Consumer,
    topic: str,
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    *,
    batch: int = FETCH,
    stop: threading.Event | None = None,
) -> Iterator[tuple[list[Any], dict[int, int]]]:
    """The records of ``topic`` from ``starts`` (partition -> first offset to read) until every
    partition reached its ``ends`` offset (its high watermark when the reading began), as batches
    of up to ``batch`` records with the next offset to read per partition they cover. Records
    written meanwhile may come along (their offsets with them). Stops early when ``stop`` is set."""
    pending = {p for p, start in starts.items() if ends.get(p, 0) > start}
    if not pending:
        return
    reader.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
    while pending and not (stop is not None and stop.is_set()):
        records: list[Any] = []
        applied: dict[int, int] = {}
        fetched: list[Any] = reader.consume(batch, 1.0)
        for msg in fetched:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                elif err.fatal():
                    raise KafkaException(err)
                continue
            partition, offset = msg.partition(), msg.offset()
            records.append(msg)
            applied[partition] = offset + 1
            if offset + 1 >= ends.get(partition, 0):
                pending.discard(partition)
        if records:
            yield records, applied


def last_per_key(records: Sequence[Any]) -> dict[bytes, bytes | None]:
    """A batch of one partition's records folded to each key's last value (None: a tombstone)."""
    return {msg.key() or b"": msg.value() for msg in records}
