"""Run state on the compacted ``whale.executor.state`` topic (effectively-once, crash recovery).

One record per run (key ``<pool>/<idempotency key>``) holding the run's whole current state, and one
per approval decision (key ``<pool>/approval/<run id>/<task>``). At start-up the store reads the
compacted topic (one record per key, not the whole history) and then keeps following it, so a
replica of the pool that takes over a partition sees what the previous owner recorded. Records of
other pools are skipped by key, before their value is decoded.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import uuid
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from whale import compacted, topics
from whale.cloudevent import CloudEvent
from whale.errors import WhaleError
from whale.producer import EventProducer
from whale.settings import WhaleSettings

log = structlog.get_logger("whale.executor.state")

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
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._error: Exception | None = None

    async def start(self, timeout: float = 60.0) -> None:
        """Read the compacted topic up to its end, then keep following it."""
        self._thread = threading.Thread(target=self._follow, name="executor-state", daemon=True)
        self._thread.start()
        ok = await asyncio.to_thread(self._caught_up.wait, timeout)
        if self._error is not None:
            raise WhaleError(f"cannot read {topics.EXECUTOR_STATE}: {self._error}")
        if not ok:
            raise WhaleError(f"reading {topics.EXECUTOR_STATE} did not catch up within {timeout}s")

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

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
    def _follow(self) -> None:
        """Read every partition from the beginning (no group, nothing committed), then follow."""
        topic = topics.EXECUTOR_STATE
        prefix = self._prefix.encode("utf-8")
        consumer = Consumer(
            {
                **self._settings.kafka_config(),
                "group.id": f"whale-executor-state-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise WhaleError(f"topic {topic} does not exist (run `whale topics ensure`)")
            parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
            ends = {p.partition: consumer.get_watermark_offsets(p, timeout=30)[1] for p in parts}
            pending = {p for p, end in ends.items() if end > 0}
            consumer.assign(parts)
            if not pending:
                self._caught_up.set()
            while not self._stop.is_set():
                batch: list[Any] = consumer.consume(1000, 0.2)
                for msg in batch:
                    err = msg.error()
                    if err is None:
                        key = msg.key()
                        if key is not None and key.startswith(prefix):
                            self._read(key.decode("utf-8", "replace"), msg.value())
                        done = msg.offset() + 1 >= ends.get(msg.partition(), 0)
                    else:
                        done = err.code() == KafkaError._PARTITION_EOF
                    if done and msg.partition() in pending:
                        pending.discard(msg.partition())
                        if not pending:
                            self._caught_up.set()
        except (KafkaException, WhaleError) as exc:
            self._error = exc
            self._caught_up.set()
        finally:
            consumer.close()

    def _read(self, key: str, value: bytes | None) -> None:
        if value is None:
            with self._lock:
                self._data.pop(key, None)
            return
        try:
            record = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("state_record_unreadable", key=key)
            return
        if isinstance(record, dict):
            self._apply(key, record)

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
