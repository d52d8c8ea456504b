"""Run state on the compacted ``whale.executor.state`` topic (effectively-once, crash recovery).

One record per run (key ``<pool>/<idempotency key>``) holding the run's whole current state, and one
per approval decision (key ``<pool>/approval/<run id>/<task>``). At start-up the store reads the
compacted topic (one record per key, not the whole history) and then keeps following it, so a
replica of the pool that takes over a partition sees what the previous owner recorded.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

from whale import compacted, topics
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings

RUN_STATE = "whale.executor.run"
APPROVAL_STATE = "whale.executor.approval"


class StateStore:
    """key -> latest state dict of this pool, from our own writes and the compacted topic."""

    def __init__(self, settings: WhaleSettings, producer: EventProducer, *, pool: str, source: str) -> None:
        self._settings = settings
        self._producer = producer
        self._pool = pool
        self._prefix = f"{pool}/"
        self._source = source
        self._data: dict[str, dict[str, Any]] = {}
        self._runs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._view: compacted.CompactedView | None = None

    async def start(self, timeout: float = 60.0) -> None:
        """Read the compacted topic up to its end, then keep following it."""
        self._view = compacted.CompactedView(self._settings, topics.EXECUTOR_STATE, on_change=self._seen)
        await self._view.start(timeout)

    async def stop(self) -> None:
        if self._view is not None:
            await self._view.stop()

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
        record = copy.deepcopy({**state, "seq": seq, "pool": self._pool})
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

    # ------------------------------------------------------------------ internals
    def _seen(self, key: str, event: CloudEvent | None) -> None:
        """Called by the view's thread for every record of the topic."""
        if not key.startswith(self._prefix) or event is None or not isinstance(event.data, dict):
            return
        self._apply(key, event.data)

    def _apply(self, key: str, record: dict[str, Any]) -> None:
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
