"""The throttle table's RocksDB partitions brought up to their changelog before Faust's recovery.

Faust's own recovery applies the changelog one record at a time through its event machinery, about
4,300 records per CPU second (profile in BENCHMARKS.md): a lost store of a million buckets took six
minutes to come back. Before the worker joins its consumer group, :class:`TableRestore` reads every
partition of ``<app id>-throttle-buckets-changelog`` from the offset its partition database applied
(the beginning for a new or lost store) to the partition's end, in batches
(:func:`whale.changelog.read_to_end`), and writes each batch, folded to each key's last value, into
the partition's database with one WriteBatch -- the bytes Faust's ``Store.apply_changelog_batch``
writes: the record's key and value as they are, a tombstone as a delete, and Faust's offset key
(``__faust\\0offset__``, the offset of the last record applied) in the same batch. Faust's recovery then
finds that offset and reads only the records written after it.

Every partition is restored, not only those the group will assign: a worker may be given any of
them as active or standby (with one standby replica and two workers, each worker holds them all),
and the assignment is known only once the worker has joined, where a long restore would hold the
rebalance of the whole group. While restoring, the worker is not a member: the others keep serving.

The writes skip RocksDB's write-ahead log (the changelog is the source of truth): a crash loses the
latest batches together with the offsets written with them, and they are read again; each database
is flushed before it is closed and handed to Faust. A database whose offset lies outside its
partition's range (the topic was recreated, or retention removed records it never applied) is
wiped and rebuilt, where Faust's recovery would stop with a consistency error.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from faust.stores.rocksdb import Store as RocksStore
from mode import Service
from rocksdict import Rdict, WriteBatch

from whale.changelog import Fetched, last_per_key, open_reader, read_to_end, watermarks
from whale.store import NO_WAL

log = structlog.get_logger(__name__)


def restore_store(
    store: RocksStore, reader: Any, topic: str, stop: threading.Event | None = None
) -> dict[int, int]:
    """Bring every partition database of ``store`` up to the changelog ``topic`` with ``reader``
    (:func:`whale.changelog.open_reader`); returns the records read per partition (0: it was up to
    date; none: the topic does not exist yet)."""
    read: dict[int, int] = {}
    for partition, bounds in watermarks(reader, topic).items():
        if stop is not None and stop.is_set():
            break
        read[partition] = _restore_partition(store, reader, topic, partition, bounds, stop)
    return read


def _restore_with(
    store: RocksStore, topic: str, config: Mapping[str, Any], stop: threading.Event
) -> dict[int, int]:
    reader = open_reader(config, "whale-rule-engine-restore")
    try:
        return restore_store(store, reader, topic, stop)
    finally:
        reader.close()


def _restore_partition(
    store: RocksStore,
    reader: Any,
    topic: str,
    partition: int,
    bounds: tuple[int, int],
    stop: threading.Event | None,
) -> int:
    low, high = bounds
    path = store.partition_path(partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    db: Rdict = store.rocksdb_options.open(path)
    try:
        found = db.get(store.offset_key)
        applied = None if found is None else int(found)
        if applied is not None and not low - 1 <= applied < high:
            log.warning("table_partition_wiped", partition=partition, applied=applied, low=low, high=high)
            db.close()
            shutil.rmtree(path)
            db = store.rocksdb_options.open(path)
            applied = None
        start = low if applied is None else applied + 1
        read = 0

        def take(fetched: Fetched) -> None:
            nonlocal read
            records, nxt = fetched.records, fetched.offsets
            if not records:
                return  # only end-of-partition events
            writes = WriteBatch(raw_mode=True)
            for key, value in last_per_key(records).items():
                if value is None:
                    writes.delete(key)
                else:
                    writes.put(key, value)
            writes.put(store.offset_key, str(nxt[partition] - 1).encode())
            db.write(writes, NO_WAL)
            read += len(records)

        read_to_end(reader, topic, {partition: start}, {partition: high}, take, stop=stop)
        if read:
            db.flush(True)  # the writes skipped the write-ahead log
        return read
    finally:
        db.close()


class TableRestore(Service):
    """A worker's first service: runs ``before`` (the health server: /healthz answers meanwhile,
    /readyz is not ready), then :func:`restore_store` on the table's store in a thread; the app (its
    consumer, Faust's recovery) starts after it. Stopping the worker stops the restore between
    two batches."""

    def __init__(
        self,
        table: Any,
        config: Mapping[str, Any],
        *,
        before: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._table = table
        self._config = config
        self._before = before
        self._stop = threading.Event()

    async def on_start(self) -> None:
        await self._before()
        store = self._table.data
        if not isinstance(store, RocksStore):
            return  # memory://: Faust's recovery fills it
        topic = self._table.changelog_topic.get_topic_name()
        read = await asyncio.to_thread(_restore_with, store, topic, self._config, self._stop)
        log.info("throttle_table_restored", topic=topic, records=sum(read.values()), partitions=read)

    async def on_stop(self) -> None:
        self._stop.set()
