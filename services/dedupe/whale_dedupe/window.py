"""The dedupe stage's window on disk: key -> first-seen time per ingest partition, in a :class:`LocalStore`.

Layout: ``k`` + partition + key -> first-seen (epoch ms, 8 bytes) and a time index ``t`` + first-seen
+ partition + key -> empty, so expiry reads only the expired range instead of every key. An index
entry whose key was seen again later (a new first-seen after the window) is dropped without
touching the key.

Restoring a partition reads ``whale.dedupe.changelog`` from the offset the store applied (from the
beginning for a new store) to its end; a key's last record wins, as in the live stage: the stage
writes a key again only once its window has passed (its earlier record is then outside the window
and skipped), and a replayed batch's second write carries the same record timestamp.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from whale.changelog import Fetched, open_reader, read_to_end, watermarks
from whale.store import Batch, LocalStore, partition_prefix

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
        """Read ``topic`` from the applied offsets to its end into the store; returns records read.

        Each fetched batch (:func:`whale.changelog.read_to_end`) is folded in a dict (a key's last
        record wins, a tombstone deletes, a time before the window is skipped) and written blind --
        nothing is read back -- with its offsets in one WriteBatch without the write-ahead log (the changelog
        is the source of truth: a crash loses the latest batches and their offsets together, and
        they are read again); the store is flushed once at the end."""
        reader = open_reader(config, "whale-dedupe-restore")
        try:
            ranges = watermarks(reader, topic, partitions)
            self.store.check_offsets(ranges)
            starts = {p: max(self.store.offset(p), ranges[p][0]) for p in partitions}
            ends = {p: ranges[p][1] for p in partitions}
            oldest = int(time.time() * 1000) - self._window_ms
            prefixes = {p: b"k" + partition_prefix(p) for p in partitions}
            read = 0

            def take(fetched: Fetched) -> None:
                nonlocal read
                msgs = fetched.records
                folded: dict[bytes, int | None] = {}
                for msg in msgs:
                    key = prefixes[msg.partition()] + (msg.key() or b"")
                    value = msg.value()
                    if value is None:
                        folded[key] = None
                        continue
                    stamp = int(value)
                    if stamp >= oldest:
                        folded[key] = stamp
                read += len(msgs)
                if msgs:
                    self.store.write(self._changes(folded), fetched.offsets, wal=False)

            read_to_end(reader, topic, starts, ends, take)
            if read:
                self.store.flush()
            return read
        finally:
            reader.close()

    @staticmethod
    def _changes(folded: dict[bytes, int | None]) -> dict[bytes, bytes | None]:
        """A folded batch as store writes: the key and its time-index entry, or the key's deletion."""
        changes: dict[bytes, bytes | None] = {}
        for key, stamp in folded.items():
            if stamp is None:
                changes[key] = None
                continue
            packed = _STAMP.pack(stamp)
            changes[key] = packed
            changes[b"t" + packed + key[1:]] = b""
        return changes
