"""The event center's view of ``whale.executor.state``, followed into a local store on disk.

The topic keeps every run for the executors' ``state_retention`` (7 days by default). The view keeps
each key's latest record as the JSON the executor wrote, with the listing entries ``/runs`` and
``/approvals`` read (layout: :mod:`.runs_store`), in a :class:`~whale.store.LocalStore` under
``WHALE_STATE_DIR`` (``event-center-runs``): memory holds RocksDB's cache and write buffers
(:class:`~whale.store.StoreSettings`), not the runs, and a listing reads the entries it returns. A
restarted event center reads only the records after the offsets its store applied; a new, lost or
foreign store is rebuilt from the topic. The APIs read the store once the view caught up (an empty
book before).
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from whale.binding import KafkaMessage, from_kafka, headers_from, is_json_content
from whale.compacted import CompactedFollower
from whale.errors import BindingError
from whale.settings import WhaleSettings
from whale.store import Batch, LocalStore, StoreSettings, open_store
from whale.topics import EXECUTOR_STATE
from whale_event_center import runs_store
from whale_event_center.runs_view import MemoryBook, RunBook

log = structlog.get_logger(__name__)
STORE = "event-center-runs"
LAYOUT = 1  # of runs_store: a store written with another layout is rebuilt


class StateView(CompactedFollower):
    """The ``whale.executor.state`` records and their listing entries in a local store, followed in
    a background thread (``local``: a store to use, e.g. in tests; else opened at start)."""

    def __init__(
        self,
        settings: WhaleSettings,
        topic: str = EXECUTOR_STATE,
        *,
        state: StoreSettings | None = None,
        local: LocalStore | None = None,
    ) -> None:
        super().__init__(settings, topic)
        self._state = state
        self._db = local
        self._given = local is not None
        self._staged: Batch | None = None

    @property
    def local(self) -> LocalStore:
        if self._db is None:
            raise RuntimeError("the state view's store is opened by start()")
        return self._db

    def book(self) -> RunBook:
        """What the APIs read: the store once caught up (an empty book before)."""
        if self._db is None or not self._caught_up.is_set():
            return MemoryBook({})
        return runs_store.StoredBook(self._db)

    def _local(self, cluster: str | None) -> LocalStore | None:
        identity = {"stage": "event-center", "topic": self._topic, "cluster": cluster, "layout": LAYOUT}
        if not self._given and (self._db is None or self._db.identity != identity):
            if self._db is not None:  # (following again after a failure: kept when it is the same)
                self._db.close()
            self._db = open_store(STORE, identity, self._state)
        return self._db

    def _begin(self) -> None:
        self._staged = self.local.batch()

    def _applied(self, offsets: dict[int, int]) -> None:
        staged, self._staged = self._staged, None
        self.local.commit(staged, offsets, wal=not self.catching_up)

    async def stop(self) -> None:
        """Stop following; the store is closed (on the event loop: no request reads it meanwhile)."""
        await super().stop()
        if not self._given and self._db is not None:
            self._db.close()
            self._db = None

    def _record(self, raw_key: bytes, msg: Any) -> None:
        key = raw_key.decode("utf-8", "replace")
        value = msg.value()
        batch = self._staged if self._staged is not None else self.local.batch()
        if value is None and not msg.headers():
            runs_store.apply(batch, key, None, None)
        else:
            kept = _json_of(raw_key, value, msg.headers())
            if kept is None:
                log.warning("compacted_record_unreadable", topic=self._topic, key=key)
                return
            raw, data = kept
            runs_store.apply(batch, key, raw, data if isinstance(data, dict) else None)
        if self._staged is None:
            self.local.commit(batch)


def _json_of(raw_key: bytes, value: bytes | None, raw_headers: Any) -> tuple[bytes, Any] | None:
    """The record's data as JSON, and decoded: the value itself when it is a binary-mode JSON record
    (what the executor writes), else the data of the CloudEvent it holds (None: not a readable
    CloudEvent)."""
    message = KafkaMessage(raw_key, value, headers_from(raw_headers))
    if value is not None and message.header("ce_specversion") is not None:
        content_type = message.header_text("content-type")
        if content_type is not None and is_json_content(content_type):
            try:
                return value, json.loads(value)
            except (UnicodeDecodeError, ValueError, RecursionError):
                return None
    try:
        event = from_kafka(message)
    except BindingError:
        return None
    try:
        raw = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    except (ValueError, RecursionError):
        return None
    return raw, json.loads(raw)
