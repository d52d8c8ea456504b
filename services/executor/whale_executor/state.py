"""Run state on the compacted ``whale.executor.state`` topic (effectively-once, crash recovery).

One record per run (key ``<pool>/<idempotency key>``) holding the run's whole current state, one
per approval decision (key ``<pool>/approval/<run id>/<task>``), one per cancel request (key
``<pool>/cancel/<run id>``) and one per run paused or resumed (key ``<pool>/pause/<run id>``). At start-up the store reads the
compacted topic (one record per key, not the whole history) and then keeps following it, so a
replica of the pool that takes over a partition sees what the previous owner recorded. Records of
other pools are skipped by key, before their value is decoded.

The state lives on disk in a local store (:mod:`whale.store`, under ``WHALE_STATE_DIR``): ``d`` +
key -> the record (JSON) and ``r`` + run id -> its run key. A restarted executor reads only the
records written after the offsets its store applied; a new, lost or foreign store is rebuilt from
the topic. Memory holds RocksDB's cache, not the runs.

Every record carries ``recorded_at`` (epoch seconds). :meth:`StateStore.sweep` writes tombstones for
finished runs recorded more than the retention ago, and for their approvals, so the topic (and the
start-up read) stays the size of the recent history; a request redelivered after that runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import structlog

from whale import compacted, topics
from whale.binding import CONTENT_TYPE, KafkaMessage, to_binary
from whale.cloudevent import SPEC_VERSION, CloudEvent, format_time
from whale.event_data import MAX_NESTING, depth_within, text_problem
from whale.ids import unique_id
from whale.producer import Delivered, EventProducer
from whale.settings import WhaleSettings
from whale.store import Batch, LocalStore, StoreSettings, contiguous, open_store
from whale_executor import secrets

log = structlog.get_logger(__name__)

RUN_STATE = "whale.executor.run"
APPROVAL_STATE = "whale.executor.approval"
CANCEL_STATE = "whale.executor.cancel"
PAUSE_STATE = "whale.executor.pause"
SPEC_VERSION_BYTES = SPEC_VERSION.encode()
CONTROL_KINDS = ("approval", "cancel", "pause")  # records about a run, swept with it
RUN_KINDS = ("workflow", "action")  # records indexed by run id
Waiter = tuple[asyncio.AbstractEventLoop, Callable[[], None]]
_APPLIED = object()  # an own write the follower applied before put had its acknowledgement


class StateStore(compacted.CompactedFollower):
    """key -> latest state dict of this pool, from our own writes and the compacted topic."""

    def __init__(
        self,
        settings: WhaleSettings,
        producer: EventProducer,
        *,
        pool: str,
        source: str,
        local: LocalStore | None = None,
        state: StoreSettings | None = None,
    ) -> None:
        super().__init__(settings, topics.EXECUTOR_STATE, key_prefix=f"{pool}/".encode())
        self._producer = producer
        self._pool = pool
        self._prefix = f"{pool}/"
        self._source = source
        self._state = state
        self._db = local  # opened when following starts (its identity names the cluster) if None
        self._given = local is not None
        self._staged: Batch | None = None
        self._batch_open = False  # between _begin and _applied (the follower's batch)
        self._woken: list[str] = []
        # our own writes stored by put and not read back yet: (partition, offset) -> key, and per key
        # (see _record: the follower skips them instead of decoding and applying them again)
        self._own: dict[tuple[int, int], str] = {}
        self._own_keys: dict[str, set[tuple[int, int]]] = {}
        self._read_to: dict[int, int] = {}  # partition -> next offset the follower reads
        # our own writes Kafka has not acknowledged to put yet: (key, value) -> the record
        # (_APPLIED once the follower read it back first and applied it from there, see _early)
        self._sending: dict[tuple[str, bytes], Any] = {}
        self._lock = threading.RLock()
        self._waiters: dict[str, list[Waiter]] = {}  # key -> (loop, what to call there) on a write

    @property
    def local(self) -> LocalStore:
        if self._db is None:
            raise RuntimeError("the state store is opened by start()")
        return self._db

    # ------------------------------------------------------------------ keys
    def run_key(self, idempotency_key: str) -> str:
        return f"{self._prefix}{idempotency_key}"

    def approval_key(self, run_id: str, task: str) -> str:
        return f"{self._prefix}approval/{run_id}/{task}"

    def cancel_key(self, run_id: str) -> str:
        return f"{self._prefix}cancel/{run_id}"

    def pause_key(self, run_id: str) -> str:
        return f"{self._prefix}pause/{run_id}"

    def run_key_of(self, run_id: str) -> str | None:
        """The state key of run ``run_id`` (workflow or action) if it belongs to this pool."""
        with self._lock:
            found = self._reader().get(b"r" + run_id.encode())
        return None if found is None else found.decode()

    # ------------------------------------------------------------------ reading and writing
    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._load(key)

    async def put(self, key: str, state: dict[str, Any], *, kind: str = RUN_STATE) -> dict[str, Any]:
        """Record the whole state of ``key`` (acknowledged by Kafka before returning); returns the
        record written (sharing nested values with ``state`` when no secret is known to hide)."""
        with self._lock:
            previous = self._load(key)
            seq = (previous or {}).get("seq", 0) + 1
        record: dict[str, Any] = {**state, "seq": seq, "pool": self._pool, "recorded_at": time.time()}
        if secrets.known():  # else scrubbing would only copy the record before it is encoded
            record = secrets.scrub_value(record)
        message = state_message(key, kind, self._source, record)
        if message is None:  # the checks' slow path: raises the EventError naming what is wrong
            event = CloudEvent.create(type=kind, source=self._source, data=record, subject=key)
            message = to_binary(event, key)
        sending = (key, message.value or b"")
        with self._lock:  # the follower may read it back before Kafka's acknowledgement reaches us
            tracked = sending not in self._sending
            if tracked:
                self._sending[sending] = record
        try:
            delivered = await self._producer.send_message(topics.EXECUTOR_STATE, message)
        finally:
            with self._lock:
                applied = self._sending.pop(sending, None) is _APPLIED if tracked else False
        if not applied:
            self._apply(key, record, delivered if isinstance(delivered, Delivered) else None, message.value)
        return record

    async def wait(self, key: str, timeout: float | None) -> dict[str, Any] | None:
        """The state of ``key`` once it exists (None when ``timeout`` passes first)."""
        found = self.get(key)
        if found is not None:
            return found
        flag = asyncio.Event()
        with self.watching(key, flag.set):
            found = self.get(key)
            if found is not None:
                return found
            try:
                await asyncio.wait_for(flag.wait(), timeout=timeout)
            except TimeoutError:
                return None
            return self.get(key)

    async def changed(self, key: str, seq: int) -> dict[str, Any] | None:
        """The state of ``key`` once its ``seq`` differs from ``seq`` (0: not recorded yet)."""
        flag = asyncio.Event()
        with self.watching(key, flag.set):
            while True:
                found = self.get(key)
                if (found or {}).get("seq", 0) != seq:
                    return found
                await flag.wait()
                flag.clear()

    @contextlib.contextmanager
    def watching(self, key: str, notify: Callable[[], None]) -> Iterator[None]:
        """Inside the block, ``notify`` is called on the running loop after each write of ``key``
        (ours or one read from the topic)."""
        entry = (asyncio.get_running_loop(), notify)
        with self._lock:
            self._waiters.setdefault(key, []).append(entry)
        try:
            yield
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
        approvals of runs that are expired or no longer known (one pass over the store)."""
        cutoff = now - retention
        runs: list[str] = []
        approvals: list[tuple[str, str]] = []
        with self._lock:
            for raw_key, raw in self.local.items(b"d"):
                try:
                    record = json.loads(raw)
                except ValueError:  # stored undecoded while catching up: never a live run
                    continue
                if not isinstance(record, dict):
                    continue
                if float(record.get("recorded_at", now)) >= cutoff:
                    continue
                key = raw_key[1:].decode()
                if record.get("kind") in CONTROL_KINDS:
                    approvals.append((key, str(record.get("run_id"))))
                elif record.get("status") == "finished":
                    runs.append(key)
            gone = {*runs, ""}  # "": the run is no longer known
            old = [key for key, run_id in approvals if (self.run_key_of(run_id) or "") in gone]
        return sorted(runs) + old

    async def sweep(self, *, retention: float, now: float | None = None) -> int:
        """Tombstone what :meth:`expired` names (each acknowledged); returns how many."""
        keys = self.expired(now=time.time() if now is None else now, retention=retention)
        for key in keys:
            await compacted.delete(self._producer, topics.EXECUTOR_STATE, key)
            self._forget(key)
        return len(keys)

    # ------------------------------------------------------------------ internals
    def _reader(self) -> Batch | LocalStore:
        return self._staged if self._staged is not None else self.local

    def _load(self, key: str) -> dict[str, Any] | None:
        raw = self._reader().get(b"d" + key.encode())
        if raw is None:
            return None
        try:
            found = json.loads(raw)
        except ValueError:  # stored undecoded while catching up (see _read): as if never written
            log.warning("state_record_unreadable", key=key)
            return None
        return found if isinstance(found, dict) else None

    def _write(self, changes: dict[bytes, bytes | None], delivered: Delivered | None = None) -> None:
        """Stage ``changes`` in the follower's batch, or store them now (our own writes)."""
        batch = self._staged if self._staged is not None else self.local.batch()
        for k, v in changes.items():
            if v is None:
                batch.delete(k)
            else:
                batch.put(k, v)
        if self._staged is None:
            offsets: dict[int, int] = {}
            if delivered is not None:
                at = delivered.partition
                offsets[at] = contiguous(self.local.offset(at), [delivered.offset])
            self.local.commit(batch, offsets)

    def _forget(self, key: str) -> None:
        with self._lock:
            record = self._load(key) or {}
            changes: dict[bytes, bytes | None] = {b"d" + key.encode(): None}
            run_id = str(record.get("run_id"))
            if record.get("kind") in RUN_KINDS and self.run_key_of(run_id) == key:
                changes[b"r" + run_id.encode()] = None
            self._write(changes)

    def _local(self, cluster: str | None) -> LocalStore | None:
        if not self._given:
            if self._db is not None:
                self._db.close()
            identity = {"stage": "executor", "topic": self._topic, "pool": self._pool, "cluster": cluster}
            with self._lock:
                self._db = open_store(f"executor-{self._pool}", identity, self._state)
        return self._db

    def _begin(self) -> None:
        self._batch_open = True  # the lock is taken by the batch's first record to store (_stage)

    def _stage(self) -> None:
        """Take the lock and open the batch's staged writes (once per batch, when a record needs them):
        a batch of only our own records read back never blocks the event loop's reads and writes."""
        if self._batch_open and self._staged is None:
            self._lock.acquire()
            self._staged = self.local.batch()

    def _applied(self, offsets: dict[int, int]) -> None:
        self._batch_open = False
        if self._staged is None:  # nothing staged: only the applied offsets move (when they do)
            with self._lock:
                if any(offset > self.local.offset(p) for p, offset in offsets.items()):
                    self.local.commit(None, offsets, wal=not self.catching_up)
            return
        try:
            self.local.commit(self._staged, offsets, wal=not self.catching_up)
        finally:
            self._staged = None
            woken, self._woken = self._woken, []
            self._lock.release()
        for key in woken:
            self._wake(key)

    async def stop(self) -> None:
        await super().stop()
        if not self._given and self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None

    def _record(self, key: bytes, msg: Any) -> None:
        if self._read_back(msg.partition(), msg.offset()):
            return
        text, value = key.decode("utf-8", "replace"), msg.value()
        if value is not None and self._sending and self._early(text, value):
            return
        self._read(text, value)

    def _early(self, key: str, value: bytes) -> bool:
        """True for our own write read back before put had Kafka's acknowledgement: applied from the
        record put holds (not decoded), and put then leaves it (it is stored, and the applied
        offset moves past it with this batch). Must be in the follower's batch (under the lock)."""
        self._stage()
        with self._lock:
            record = self._sending.get((key, value))
            if not isinstance(record, dict):
                return False
            self._apply(key, record, value=value)
            self._sending[(key, value)] = _APPLIED
        return True

    def _read_back(self, partition: int, offset: int) -> bool:
        """True for our own write at ``offset`` that put stored already, with no record of another
        writer for its key applied since (reading it again would change nothing: skipped undecoded,
        its offset still counts as applied). Another executor's records, and a previous incarnation's
        (a restart, a rebuilt store: nothing is registered then), are never skipped."""
        where = (partition, offset)
        with self._lock:
            self._read_to[partition] = offset + 1
            if not self._own:
                return False
            key = self._own.pop(where, None)
            if key is None:
                return False
            mine = self._own_keys.get(key)
            if mine is not None:
                mine.discard(where)
                if not mine:
                    del self._own_keys[key]
            return True

    def _own_write(self, key: str, delivered: Delivered) -> None:
        """Register our write of ``key`` at ``delivered``, just stored (under the lock), unless the
        follower read past it already (it applied it as any record: nothing left to skip)."""
        if delivered.offset < self._read_to.get(delivered.partition, 0):
            return
        where = (delivered.partition, delivered.offset)
        self._own_keys.setdefault(key, set()).add(where)
        self._own[where] = key

    def _foreign(self, key: str) -> None:
        """A record of ``key`` not ours (or not stored by put) is applied: our own writes of ``key``
        not read back yet are applied again when read, as the topic's order has them."""
        if self._own_keys:
            for where in self._own_keys.pop(key, ()):
                self._own.pop(where, None)

    def _read(self, key: str, value: bytes | None) -> None:
        self._stage()
        self._foreign(key)
        if value is None:
            self._forget(key)
            return
        if self.catching_up and self._staged is not None and _plain_record(value):
            # catching up: the topic's order is the truth (a key's last record is its newest
            # state), so the record is staged as written: not decoded, no read of the stored one
            self._staged.put(b"d" + key.encode(), value)
            if self._waiters:
                self._woken.append(key)
            return
        if self._staged is not None and self._staged.get(b"d" + key.encode()) == value:
            return  # our own write read back: stored as written already
        try:
            record = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("state_record_unreadable", key=key)
            return
        if isinstance(record, dict):
            self._apply(key, record, value=value if "recorded_at" in record else None)

    def _apply(
        self,
        key: str,
        record: dict[str, Any],
        delivered: Delivered | None = None,
        value: bytes | None = None,
    ) -> None:
        """Store ``record`` (``value``: as encoded on the topic) unless a newer one is stored; our own
        write (``delivered``) also advances the applied offset when it directly follows it."""
        record.setdefault("recorded_at", time.time())  # written before records carried it
        with self._lock:
            current = self._load(key)
            if current is not None and current.get("seq", 0) > record.get("seq", 0):
                return  # an older record read back after a newer local write
            stored = value if value is not None else json.dumps(record).encode()
            changes: dict[bytes, bytes | None] = {b"d" + key.encode(): stored}
            run_id = record.get("run_id")
            if record.get("kind") in RUN_KINDS and isinstance(run_id, str):
                changes[b"r" + run_id.encode()] = key.encode()
            self._write(changes, delivered)
            if delivered is not None:
                self._own_write(key, delivered)
            if self._staged is not None:
                self._woken.append(key)
                return
        self._wake(key)

    def _wake(self, key: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(key, []))
        for loop, notify in waiters:
            loop.call_soon_threadsafe(notify)


def state_message(key: str, kind: str, source: str, record: dict[str, Any]) -> KafkaMessage | None:
    """The binary-mode CloudEvent of a state record, as ``to_binary(CloudEvent.create(type=kind,
    source=source, data=record, subject=key), key)`` writes it, built without the model: the record
    is our own and encoded once, for the topic and the local store. None when the subject or the
    data would fail the event's checks (the caller then builds the event, which names the problem)."""
    if text_problem(key) is not None:
        return None
    try:
        value = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return None
    if value.count(b"{") + value.count(b"[") >= MAX_NESTING and not depth_within(record, MAX_NESTING):
        return None
    headers: list[tuple[str, bytes]] = [
        ("ce_specversion", SPEC_VERSION_BYTES),
        ("ce_id", unique_id().encode()),
        ("ce_source", source.encode("utf-8")),
        ("ce_type", kind.encode("utf-8")),
    ]
    if key:
        headers.append(("ce_subject", key.encode("utf-8")))
    headers += [("ce_time", format_time(datetime.now(UTC)).encode()), (CONTENT_TYPE, b"application/json")]
    return KafkaMessage(key.encode("utf-8"), value, tuple(headers))


def _plain_record(value: bytes) -> bool:
    """A record that can be stored as written: a JSON object carrying ``recorded_at`` and not a
    workflow's (whose run id is indexed). Substring tests: a false "no" only takes the decoding path."""
    return value[:1] == b"{" and b'"recorded_at"' in value and b'"workflow"' not in value
