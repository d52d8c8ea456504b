"""Run state on the compacted ``whale.executor.state`` topic (effectively-once, crash recovery).

One record per run (key ``<pool>/<idempotency key>``) holding the run's whole current state, and one
per approval decision (key ``<pool>/approval/<run id>/<task>``). At start-up the store reads the
compacted topic (one record per key, not the whole history) and then keeps following it, so a
replica of the pool that takes over a partition sees what the previous owner recorded. Records of
other pools are skipped by key, before their value is decoded.

Every record carries ``recorded_at`` (epoch seconds). :meth:`StateStore.sweep` writes tombstones for
finished runs recorded more than the retention ago, and for their approvals, so the topic (and the
start-up read) stays the size of the recent history; a request redelivered after that runs again.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from typing import Any

import structlog

from whale import compacted, topics
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale_executor import secrets

log = structlog.get_logger(__name__)

RUN_STATE = "whale.executor.run"
APPROVAL_STATE = "whale.executor.approval"


class StateStore(compacted.CompactedFollower):
    """key -> latest state dict of this pool, from our own writes and the compacted topic."""

    def __init__(self, settings: WhaleSettings, producer: EventProducer, *, pool: str, source: str) -> None:
        super().__init__(settings, topics.EXECUTOR_STATE, key_prefix=f"{pool}/".encode())
        self._producer = producer
        self._pool = pool
        self._prefix = f"{pool}/"
        self._source = source
        self._data: dict[str, dict[str, Any]] = {}
        self._runs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    # ------------------------------------------------------------------ keys
    def run_key(self, idempotency_key: str) -> str:
        return f"{self._prefix}{idempotency_key}"

    def approval_key(self, run_id: str, task: str) -> str:
        return f"{self._prefix}approval/{run_id}/{task}"

    def run_key_of(self, run_id: str) -> str | None:
        """The state key of workflow run ``run_id`` if it belongs to this pool."""
        with self._lock:
            return self._runs.get(run_id)

    # ------------------------------------------------------------------ reading and writing
    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._data.get(key)
            return copy.deepcopy(found) if found is not None else None

    async def put(self, key: str, state: dict[str, Any], *, kind: str = RUN_STATE) -> dict[str, Any]:
        """Record the whole state of ``key`` (acknowledged by Kafka before returning)."""
        with self._lock:
            previous = self._data.get(key)
            seq = (previous or {}).get("seq", 0) + 1
        record: dict[str, Any] = secrets.scrub_value(
            {**state, "seq": seq, "pool": self._pool, "recorded_at": time.time()}
        )
        event = CloudEvent.create(type=kind, source=self._source, data=record, subject=key)
        await compacted.put(self._producer, topics.EXECUTOR_STATE, key, event)
        self._apply(key, record)
        return record

    async def wait(self, key: str, timeout: float | None) -> dict[str, Any] | None:
        """The state of ``key`` once it exists (None when ``timeout`` passes first)."""
        found = self.get(key)
        if found is not None:
            return found
        flag = asyncio.Event()
        entry = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._waiters.setdefault(key, []).append(entry)
        try:
            found = self.get(key)
            if found is not None:
                return found
            try:
                await asyncio.wait_for(flag.wait(), timeout=timeout)
            except TimeoutError:
                return None
            return self.get(key)
        finally:
            with self._lock:
                waiters = self._waiters.get(key, [])
                if entry in waiters:
                    waiters.remove(entry)
                if not waiters:
                    self._waiters.pop(key, None)

    # ------------------------------------------------------------------ retention
    def expired(self, *, now: float, retention: float) -> list[str]:
        """Keys of finished runs recorded more than ``retention`` seconds before ``now``, and of the
        approvals of runs that are expired or no longer known."""
        cutoff = now - retention
        with self._lock:
            old = {k: r for k, r in self._data.items() if float(r.get("recorded_at", now)) < cutoff}
            runs = {
                k for k, r in old.items() if r.get("kind") != "approval" and r.get("status") == "finished"
            }
            gone = {*runs, ""}  # "": the run is no longer known
            approvals = [
                k
                for k, r in old.items()
                if r.get("kind") == "approval" and self._runs.get(str(r.get("run_id")), "") in gone
            ]
        return sorted(runs) + approvals

    async def sweep(self, *, retention: float, now: float | None = None) -> int:
        """Tombstone what :meth:`expired` names (each acknowledged); returns how many."""
        keys = self.expired(now=time.time() if now is None else now, retention=retention)
        for key in keys:
            await compacted.delete(self._producer, topics.EXECUTOR_STATE, key)
            self._forget(key)
        return len(keys)

    def _forget(self, key: str) -> None:
        with self._lock:
            record = self._data.pop(key, None)
            run_id = (record or {}).get("run_id")
            if (record or {}).get("kind") == "workflow" and self._runs.get(str(run_id)) == key:
                del self._runs[str(run_id)]

    # ------------------------------------------------------------------ internals
    def _record(self, key: bytes, msg: Any) -> None:
        self._read(key.decode("utf-8", "replace"), msg.value())

    def _read(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._forget(key)
            return
        try:
            record = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("state_record_unreadable", key=key)
            return
        if isinstance(record, dict):
            self._apply(key, record)

    def _apply(self, key: str, record: dict[str, Any]) -> None:
        record.setdefault("recorded_at", time.time())  # written before records carried it
        with self._lock:
            current = self._data.get(key)
            if current is not None and current.get("seq", 0) > record.get("seq", 0):
                return  # an older record read back after a newer local write
            self._data[key] = record
            run_id = record.get("run_id")
            if record.get("kind") == "workflow" and isinstance(run_id, str):
                self._runs[run_id] = key
            waiters = list(self._waiters.get(key, []))
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)
