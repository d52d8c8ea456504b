"""Expiry of closed to-dos: the to-do stage's periodic sweep of items closed longer than the retention.

Every ``WHALE_TODO_SWEEP_INTERVAL`` seconds the sweep reads the book's expiry index (closed items
by last change, :func:`whale_todo.store.expired`) up to the cutoff ``now - WHALE_TODO_CLOSED_RETENTION``,
:data:`CHUNK` entries at a time (memory stays bounded whatever the book holds), writes a tombstone
on ``whale.todos`` for each expired item (acknowledged, acks=all) and then drops it from the book
with the index entries that name it; the event center's ``/todos`` view drops it on the tombstone.
A later event with the same merge key (a re-firing alert) opens a new item. Open and claimed items
never expire. Like the escalation sweep it holds the stage's lock, one chunk at a time, so it never
interleaves with a batch of decisions; a failed write drops the chunk's staged changes and the next
sweep tries again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from whale import compacted, topics
from whale.todos import OPEN_STATES
from whale_todo import metrics
from whale_todo.stage import TodoBook
from whale_todo.store import drop_item, expired

log = structlog.get_logger(__name__)
CHUNK = 1000  # expiry entries read, and tombstones in flight, per round


class Expirer:
    """Tombstones closed items older than ``retention`` seconds (0: never), with ``producer``, under
    the stage's ``lock``."""

    def __init__(self, retention: float, producer: Any, book: TodoBook, lock: asyncio.Lock) -> None:
        self._retention = retention
        self._producer = producer
        self._book = book
        self._lock = lock

    async def sweep(self, now: float | None = None) -> int:
        """Expire every closed item last changed before ``now - retention``; returns how many."""
        if self._retention <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - self._retention
        total = 0
        while True:
            async with self._lock:
                swept, more = await self._round(cutoff)
            total += swept
            if not more:
                break
        if total:
            log.info("todos_expired", items=total, retention_s=self._retention)
        return total

    async def _round(self, cutoff: float) -> tuple[int, bool]:
        """One chunk: (items expired, whether the index may hold more expired entries)."""
        self._book.rollback()
        found, stale = expired(self._book.store, cutoff, CHUNK, OPEN_STATES)
        batch = self._book.batch
        for entry in stale:
            batch.delete(entry)
        sends = [compacted.delete(self._producer, topics.TODOS, item_id) for _, item_id in found]
        try:
            delivered = await asyncio.gather(*sends)
        except BaseException:
            self._book.rollback()
            raise
        for entry, item_id in found:
            drop_item(batch, item_id)
            batch.delete(entry)
        self._book.commit(list(delivered))
        metrics.EXPIRED.inc(len(found))
        return len(found), len(found) + len(stale) >= CHUNK
