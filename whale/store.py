"""A stage's local state on disk (RocksDB through ``rocksdict``), a cache of its changelog topic.

The changelog or compacted topic stays the source of truth. The store keeps the stage's keys on
disk (memory: RocksDB's block cache and write buffers, bounded by :class:`StoreSettings`) and, with
every write, the next changelog offset it has applied per partition, in the same atomic
``WriteBatch``. On start-up a stage opens its store and reads only the records after those offsets.

A store is *rebuilt* (wiped, every offset back to the beginning) when it is missing, cannot be
opened (corrupt), belongs to another topic or cluster (its identity differs), was last written
longer ago than ``stale_after`` (the topic's compaction may since have dropped tombstones the store
never saw), or when an applied offset is outside the partition's current range (the topic was
recreated or retention passed it) -- see :meth:`LocalStore.check_offsets`.

Several processes on one machine (tests, or replicas sharing a disk) never share a RocksDB: each
claims a numbered slot under the store's directory with an exclusive ``flock`` (:mod:`whale.slots`),
released when it exits, so a restarted process finds its previous slot free again.
"""

from __future__ import annotations

import json
import shutil
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rocksdict import (
    BlockBasedIndexType,
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from whale.settings import WhaleSettings
from whale.slots import claim_slot

log = structlog.get_logger(__name__)

META = b"\x00meta/"
_IDENTITY = META + b"identity"
_SAVED_AT = META + b"saved_at"
_OFFSET = META + b"offset/"
_TOMBSTONE = object()
NO_WAL = WriteOptions()
NO_WAL.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method
# level-0 files found at open that mean a bulk load's one compaction was interrupted (RocksDB's own
# write-slowdown trigger): it is resumed in the background (LocalStore.compact) rather than left to
# automatic compaction, which would stall every write until level 0 is back under 36 files
L0_BACKLOG = 20


class StoreSettings(BaseSettings):
    """Where local state lives and how much memory it may use (env ``WHALE_STATE_*``)."""

    model_config = SettingsConfigDict(env_prefix="WHALE_STATE_", extra="ignore")

    dir: Path = Field(
        default_factory=lambda: WhaleSettings().cache_dir / "state",
        description="directory of the stages' local stores (a persistent volume in Kubernetes)",
    )
    cache_mb: int = Field(default=32, ge=1, description="RocksDB block cache per store, MiB")
    write_buffer_mb: int = Field(default=16, ge=1, description="RocksDB memtable size per store, MiB")
    stale_after: float = Field(
        default=12 * 3600.0,
        gt=0,
        description="seconds after which an unused store is rebuilt (keep below delete.retention.ms)",
    )


def partition_prefix(partition: int) -> bytes:
    """A fixed-width key prefix for one partition's keys (ordered, prefix-free)."""
    return struct.pack(">I", partition)


class Batch:
    """Writes staged for one atomic commit; reads see the staged writes first.

    ``raw``: a RocksDB ``WriteBatch`` a bulk load may put into directly (cheaper than staging, but
    never read back through the batch); it is written before the staged changes."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self.staged: dict[bytes, Any] = {}
        self.raw = WriteBatch(raw_mode=True)

    def get(self, key: bytes) -> bytes | None:
        found = self.staged.get(key)
        if found is _TOMBSTONE:
            return None
        if found is not None:
            return bytes(found)
        return self._store.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.staged[key] = value

    def delete(self, key: bytes) -> None:
        self.staged[key] = _TOMBSTONE

    def __len__(self) -> int:
        return len(self.staged)


class LocalStore:
    """One RocksDB directory: the keys of one stage plus the offsets it applied, per partition."""

    def __init__(
        self, base: Path, identity: Mapping[str, Any], settings: StoreSettings | None = None
    ) -> None:
        self._claim = claim_slot(base)
        self.path = self._claim.path / "db"
        self.identity = dict(identity)
        self._settings = settings or StoreSettings()
        self.rebuilt = False
        self.reason = ""
        self._deferred = False
        self._compacting: threading.Thread | None = None
        self._stopping = False
        self._db = self._open()
        self._offsets = dict(self._read_offsets())  # the applied offsets (read once, kept current)
        if self.level0_files() >= L0_BACKLOG:  # an interrupted one compaction: resumed
            self.defer_compaction()
            self.compact()

    # ------------------------------------------------------------------ opening
    def _options(self, *, bulk: bool = False) -> Options:
        """RocksDB's options; ``bulk`` (:meth:`defer_compaction`): the level-0 files' index and
        filter blocks not pinned in the cache (they pile up until the one compaction: pinned, they
        would grow memory with the size of the load)."""
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(self._settings.write_buffer_mb << 20)
        options.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(self._settings.cache_mb << 20))
        table.set_bloom_filter(10, False)
        # partitioned index and filters: only their top level is held; the partitions go through
        # the cache like data blocks (a merge of many files holds one partition per file, not
        # every file's whole index: a rebuild's one compaction stays bounded at any size)
        table.set_index_type(BlockBasedIndexType.two_level_index_search())
        table.set_partition_filters(True)
        table.set_cache_index_and_filter_blocks(True)  # counted in the cache: memory stays bounded
        table.set_pin_l0_filter_and_index_blocks_in_cache(not bulk)
        table.set_pin_top_level_index_and_filter(True)  # a few hundred bytes per file, bulk or not
        options.set_block_based_table_factory(table)
        if bulk:
            options.set_max_subcompactions(2)  # the one compaction: two key ranges at once
        return options

    def _rdict(self, options: Options) -> Rdict:
        # rocksdict opens an existing store with the column family options it was created with
        # unless they are given: the configured cache, buffers and pinning would not apply
        return Rdict(str(self.path), options, column_families={"default": options})

    def _open(self) -> Rdict:
        wanted = json.dumps(self.identity, sort_keys=True).encode()
        reason = ""
        db: Rdict | None = None
        if not self.path.exists():
            reason = "missing"
        else:
            try:
                db = self._rdict(self._options())
            except Exception as exc:  # rocksdict raises plain Exceptions for corruption
                reason = f"unreadable: {exc}"
            else:
                found = db.get(_IDENTITY)
                saved = db.get(_SAVED_AT)
                if found is None:
                    reason = "missing"
                elif bytes(found) != wanted:
                    reason = f"foreign: {bytes(found).decode('utf-8', 'replace')}"
                elif saved is None or time.time() - float(saved) > self._settings.stale_after:
                    reason = "stale"
        if not reason:
            assert db is not None
            return db
        if db is not None:
            db.close()
        return self._fresh(reason, wanted)

    def _fresh(self, reason: str, identity: bytes) -> Rdict:
        self.rebuilt, self.reason = True, reason
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._rdict(self._options())
        batch = WriteBatch(raw_mode=True)
        batch.put(_IDENTITY, identity)
        batch.put(_SAVED_AT, str(time.time()).encode())
        db.write(batch)
        log.info("store_rebuilt", path=str(self.path), reason=reason)
        return db

    def reset(self, reason: str) -> None:
        """Wipe the store (e.g. an applied offset no longer exists in the topic)."""
        self._close_db()
        self._deferred = False
        self._db = self._fresh(reason, json.dumps(self.identity, sort_keys=True).encode())
        self._offsets = {}

    def check_offsets(self, ranges: Mapping[int, tuple[int, int]]) -> bool:
        """Reset the store when an applied offset is outside its partition's ``(low, high)`` range
        (the topic was recreated, or retention removed records never applied); True if it did."""
        for partition, offset in self.offsets().items():
            if partition not in ranges:
                continue  # not read now (another replica's partition)
            low, high = ranges[partition]
            if offset > high or offset < low:
                self.reset(f"offset {offset} of partition {partition} outside [{low}, {high}]")
                return True
        return False

    # ------------------------------------------------------------------ reading
    def get(self, key: bytes) -> bytes | None:
        found = self._db.get(key)
        return None if found is None else bytes(found)

    def items(self, prefix: bytes = b"", *, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Keys starting with ``prefix`` (and below ``end`` when given) in key order; never the
        store's own metadata."""
        it = self._db.iter()
        it.seek(prefix if prefix else META + b"\xff")
        while it.valid():
            key = bytes(it.key())
            if not key.startswith(prefix) or (end is not None and key >= end):
                break
            if not key.startswith(META):
                yield key, bytes(it.value())
            it.next()

    def level0_files(self) -> int:
        return int(self._db.property_int_value("rocksdb.num-files-at-level0") or 0)

    def estimated_keys(self) -> int:
        """RocksDB's estimate of the keys stored (metadata included)."""
        return int(self._db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def offsets(self) -> dict[int, int]:
        """Partition -> next changelog offset to read (0 for a partition never applied)."""
        return dict(self._offsets)

    def offset(self, partition: int) -> int:
        return self._offsets.get(partition, 0)

    def _read_offsets(self) -> Iterator[tuple[int, int]]:
        for key, value in self._meta_items(_OFFSET):
            yield int(key[len(_OFFSET) :]), int(value)

    def _meta_items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid() and bytes(it.key()).startswith(prefix):
            yield bytes(it.key()), bytes(it.value())
            it.next()

    # ------------------------------------------------------------------ writing
    def batch(self) -> Batch:
        return Batch(self)

    def commit(
        self, batch: Batch | None = None, offsets: Mapping[int, int] | None = None, *, wal: bool = True
    ) -> None:
        """Write ``batch`` and the new applied ``offsets`` atomically (one RocksDB WriteBatch); an
        applied offset never moves back (a record read back after our own write advanced it)."""
        if batch is None:
            self.write({}, offsets, wal=wal)
            return
        self.write(batch.staged, offsets, wal=wal, writes=batch.raw)
        batch.staged.clear()
        batch.raw = WriteBatch(raw_mode=True)

    def write(
        self,
        changes: Mapping[bytes, bytes | None],
        offsets: Mapping[int, int] | None = None,
        *,
        wal: bool = True,
        writes: WriteBatch | None = None,
    ) -> None:
        """Write ``changes`` (None deletes) and the applied ``offsets`` in one atomic WriteBatch
        (``writes``, when given: one already holding earlier writes, e.g. a :class:`Batch`'s ``raw``).

        ``wal=False`` (a rebuild: the changelog is the source of truth) skips RocksDB's write-ahead
        log; a crash then loses the latest such writes *and* the offsets written with them (the
        memtables are flushed in order, so what survives is a consistent prefix), and they are read
        again. Call :meth:`flush` before writing with the log again."""
        if writes is None:
            writes = WriteBatch(raw_mode=True)
        for key, value in changes.items():
            if value is None or value is _TOMBSTONE:  # _TOMBSTONE: a Batch's staged deletion
                writes.delete(key)
            else:
                writes.put(key, value)
        moved = {p: o for p, o in (offsets or {}).items() if o > self.offset(p)}
        for partition, offset in moved.items():
            writes.put(_OFFSET + str(partition).encode(), str(offset).encode())
        writes.put(_SAVED_AT, str(time.time()).encode())
        if wal:
            self._db.write(writes)
        else:
            self._db.write(writes, NO_WAL)
        self._offsets.update(moved)

    def flush(self) -> None:
        """Persist the memtables (after writes without the write-ahead log)."""
        self._db.flush(True)

    def defer_compaction(self) -> None:
        """No automatic compaction until :meth:`compact` (a bulk load, e.g. a rebuild into a new
        store: the data is compacted once at the end instead of being rewritten level by level as it
        arrives; RocksDB's level-0 write stalls do not apply meanwhile). The store is reopened with
        :meth:`_options` ``bulk`` (memory stays bounded by the cache however many level-0 files
        pile up). Until :meth:`compact` (automatic compaction) or the next open (the options)."""
        if not self._deferred:
            self._db.flush(True)  # writes made without the write-ahead log survive the close
            self._db.close()
            self._db = self._rdict(self._options(bulk=True))
            self._db.set_options({"disable_auto_compactions": "true"})
            self._deferred = True

    def compact(self) -> None:
        """After :meth:`defer_compaction`: compact the whole store once, then let RocksDB compact
        as usual again (a no-op otherwise), in a thread of its own (RocksDB's compaction does not
        hold the GIL) while the store serves: reads and writes are correct meanwhile, point reads
        slower until the level-0 files are merged (each file's filter is consulted). See
        :meth:`wait_compacted`; :meth:`close` stops it (resumed at the next open: :data:`L0_BACKLOG`)."""
        if not self._deferred or self._compacting is not None:
            return
        self._compacting = threading.Thread(target=self._compact_once, name="store-compaction", daemon=True)
        self._compacting.start()

    def wait_compacted(self, timeout: float | None = None) -> bool:
        """Wait for a background :meth:`compact`; True once none is running."""
        if self._compacting is not None:
            self._compacting.join(timeout)
        return self._compacting is None or not self._compacting.is_alive()

    def _compact_once(self) -> None:
        started, files = time.perf_counter(), self.level0_files()
        try:
            self._db.compact_range(None, None)
        except Exception as exc:  # rocksdict raises plain Exceptions
            log.warning("store_compaction_failed", path=str(self.path), error=str(exc))
            return
        if self._stopping:  # stopped by close() (RocksDB returns early): resumed at the next open
            return
        self._db.set_options({"disable_auto_compactions": "false"})
        self._deferred = False
        log.info("store_compacted", path=str(self.path), level0_files=files,
                 seconds=round(time.perf_counter() - started, 1))  # fmt: skip

    def put(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value)

    def delete(self, key: bytes) -> None:
        self._db.delete(key)

    def close(self) -> None:
        self._close_db()
        self._claim.release()

    def _close_db(self) -> None:
        """Close the RocksDB, first stopping a background :meth:`compact` (what it merged so far is
        kept or discarded whole: RocksDB installs a compaction's output atomically)."""
        compacting, self._compacting = self._compacting, None
        if compacting is None or not compacting.is_alive():
            self._db.close()
            return
        self._stopping = True
        self._db.flush(True)  # before the cancel: RocksDB flushes nothing once shutting down
        self._db.cancel_all_background(True)
        compacting.join()
        self._stopping = False
        try:
            self._db.close()
        except Exception as exc:  # its own flush answers "shutdown in progress" (flushed above)
            log.debug("store_closed_while_compacting", path=str(self.path), error=str(exc))


def open_store(name: str, identity: Mapping[str, Any], settings: StoreSettings | None = None) -> LocalStore:
    """The store ``name`` under the configured state directory."""
    settings = settings or StoreSettings()
    return LocalStore(settings.dir / name, identity, settings)


def contiguous(applied: int, delivered: list[int]) -> int:
    """The next offset to read after our own writes at ``delivered`` offsets: advanced only when
    they follow ``applied`` without a gap (a gap: someone else wrote there, read it back later)."""
    nxt = applied
    for offset in sorted(delivered):
        if offset != nxt:
            break
        nxt = offset + 1
    return nxt
