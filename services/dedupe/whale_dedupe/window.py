"""The dedupe stage's window on disk: key -> first-seen time per ingest partition, in a :class:`LocalStore`.

Layout: ``k`` + partition + key -> first-seen (epoch ms, 8 bytes) and a time index ``t`` + first-seen
+ partition + key -> empty, so expiry reads only the expired range instead of every key. An index
entry whose key was seen again later (a new first-seen after the window) is dropped without
touching the key.

Restoring a partition reads ``whale.dedupe.changelog`` from the offset the store applied (from the
beginning for a new store) to its end; a record's time is kept as the minimum seen (the changelog
can hold a replayed batch's second write).
"""

from __future__ import annotations

import struct
import time
import uuid
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from whale.store import Batch, LocalStore, partition_prefix

log = structlog.get_logger(__name__)
_STAMP = struct.Struct(">Q")
CHUNK = 10_000


def _key(partition: int, key: str) -> bytes:
    return b"k" + partition_prefix(partition) + key.encode("utf-8")


def _index(stamp: int, partition: int, key: str) -> bytes:
    return b"t" + _STAMP.pack(max(stamp, 0)) + partition_prefix(partition) + key.encode("utf-8")


class DedupeWindow:
    """The window's keys on disk (RocksDB's cache in memory), their expiry and their restore."""

    def __init__(self, store: LocalStore, window_ms: int) -> None:
        self.store = store
        self._window_ms = window_ms

    def seen(self, batch: Batch, partition: int, key: str) -> int | None:
        raw = batch.get(_key(partition, key))
        return None if raw is None else int(_STAMP.unpack(raw)[0])

    def remember(self, batch: Batch, partition: int, key: str, stamp: int) -> None:
        batch.put(_key(partition, key), _STAMP.pack(max(stamp, 0)))
        batch.put(_index(stamp, partition, key), b"")

    def forget(self, batch: Batch, partition: int, key: str) -> None:
        batch.delete(_key(partition, key))

    @property
    def keys(self) -> int:
        """Keys in the window (RocksDB's estimate: exact only after compaction)."""
        estimate = self.store.estimated_keys()
        return max(0, estimate // 2)

    # ------------------------------------------------------------------ expiry
    def purge(self, oldest: int) -> int:
        """Delete every key first seen before ``oldest`` (epoch ms); returns how many."""
        removed = 0
        batch = self.store.batch()
        for index, _ in self.store.items(b"t", end=b"t" + _STAMP.pack(max(oldest, 0))):
            stamp = _STAMP.unpack(index[1:9])[0]
            key = b"k" + index[9:]
            current = self.store.get(key)
            if current is not None and _STAMP.unpack(current)[0] == stamp:
                batch.delete(key)
                removed += 1
            batch.delete(index)
            if len(batch) >= CHUNK:
                self.store.commit(batch)
        self.store.commit(batch)
        return removed

    # ------------------------------------------------------------------ restore
    def restore(self, config: dict[str, Any], topic: str, partitions: list[int]) -> int:
        """Read ``topic`` from the applied offsets to its end into the store; returns records read."""
        reader = Consumer(
            {
                **config,
                "group.id": f"whale-dedupe-restore-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            ranges = _ranges(reader, topic, partitions)
            self.store.check_offsets(ranges)
            starts = {p: max(self.store.offset(p), ranges[p][0]) for p in partitions}
            ends = {p: ranges[p][1] for p in partitions}
            pending = {p for p in partitions if ends[p] > starts[p]}
            if not pending:
                return 0
            reader.assign([TopicPartition(topic, p, starts[p]) for p in pending])
            oldest = int(time.time() * 1000) - self._window_ms
            batch = self.store.batch()
            read = 0
            while pending:
                msgs: list[Any] = reader.consume(1000, 1.0)
                for msg in msgs:
                    if msg.error() is not None:
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            pending.discard(msg.partition())
                        continue
                    read += 1
                    self._replay(batch, msg, oldest)
                    if msg.offset() + 1 >= ends[msg.partition()]:
                        pending.discard(msg.partition())
                if len(batch) >= CHUNK or not pending:
                    self.store.commit(batch, _positions(reader, topic, partitions, ends, pending))
            return read
        finally:
            reader.close()

    def _replay(self, batch: Batch, msg: Any, oldest: int) -> None:
        partition = msg.partition()
        key = (msg.key() or b"").decode("utf-8", "replace")
        value = msg.value()
        if value is None:
            self.forget(batch, partition, key)
            return
        stamp = int(value)
        if stamp < oldest:
            return
        before = self.seen(batch, partition, key)
        if before is None or stamp < before:
            self.remember(batch, partition, key, stamp)


def _positions(
    reader: Consumer, topic: str, partitions: list[int], ends: dict[int, int], pending: set[int]
) -> dict[int, int]:
    """The next offset of every restored partition: its end once done, else the reader's position."""
    done = {p: ends[p] for p in partitions if p not in pending}
    if pending:
        for tp in reader.position([TopicPartition(topic, p) for p in pending]):
            if tp.offset >= 0:
                done[tp.partition] = tp.offset
    return done


def _ranges(
    reader: Consumer, topic: str, partitions: list[int], attempts: int = 30
) -> dict[int, tuple[int, int]]:
    """Low and high watermarks of the changelog partitions (retried: a new topic takes a moment)."""
    for attempt in range(attempts):
        try:
            return {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        except KafkaException as exc:
            if attempt == attempts - 1:
                raise
            log.info("changelog_not_ready", topic=topic, error=str(exc))
            time.sleep(1.0)
    return {}
