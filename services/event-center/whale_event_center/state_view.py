"""The event center's view of ``whale.executor.state``: each key's latest record as the JSON the
executor wrote, decoded only when ``/runs`` or ``/approvals`` read it.

The topic keeps every run for the executors' ``state_retention`` (7 days by default), and the view
holds all of them. Kept as decoded CloudEvents (what :class:`~whale.compacted.CompactedView` keeps), a
finished ``core.noop`` run's record cost about 6.2 KB of Python objects (tracemalloc), 7 times its
850 bytes of JSON: an event center that read 30,000 runs was at 355 MiB of RSS instead of 111 (the
end-to-end benchmark records 18,000 a pass, on top of what the topic held). Keeping the JSON it is
193 MiB; a read decodes the records it shows (a few µs each). Memory still grows with the runs the
retention keeps: a disk-backed store (:mod:`whale.store`, as the executor's) bounds that (issue 16).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import structlog

from whale.binding import KafkaMessage, from_kafka, headers_from, is_json_content
from whale.compacted import CompactedFollower
from whale.errors import BindingError
from whale.settings import WhaleSettings
from whale.topics import EXECUTOR_STATE

log = structlog.get_logger(__name__)


class StateView(CompactedFollower):
    """key -> the latest record of ``whale.executor.state`` (its JSON), followed in a background thread."""

    def __init__(self, settings: WhaleSettings, topic: str = EXECUTOR_STATE) -> None:
        super().__init__(settings, topic)
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def records(self) -> dict[str, Any]:
        """Every key's record, decoded (a snapshot: later changes do not show in it)."""
        with self._lock:
            values = list(self._values.items())
        out: dict[str, Any] = {}
        for key, value in values:
            try:
                out[key] = json.loads(value)
            except ValueError:  # kept only after it decoded once; never expected
                continue
        return out

    def _record(self, raw_key: bytes, msg: Any) -> None:
        key = raw_key.decode("utf-8", "replace")
        value = msg.value()
        if value is None and not msg.headers():
            with self._lock:
                self._values.pop(key, None)
            return
        kept = _json_of(raw_key, value, msg.headers())
        if kept is None:
            log.warning("compacted_record_unreadable", topic=self._topic, key=key)
            return
        with self._lock:
            self._values[key] = kept


def _json_of(raw_key: bytes, value: bytes | None, raw_headers: Any) -> bytes | None:
    """The record's data as JSON: the value itself when it is a binary-mode JSON record (what the
    executor writes), else the data of the CloudEvent it holds (None: not a readable CloudEvent)."""
    message = KafkaMessage(raw_key, value, headers_from(raw_headers))
    if value is not None and message.header("ce_specversion") is not None:
        content_type = message.header_text("content-type")
        if content_type is not None and is_json_content(content_type):
            try:
                json.loads(value)
            except (UnicodeDecodeError, ValueError, RecursionError):
                return None
            return value
    try:
        event = from_kafka(message)
    except BindingError:
        return None
    try:
        return json.dumps(event.data, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    except (ValueError, RecursionError):
        return None
