"""Elasticsearch documents from Kafka messages: CloudEvents, dead letters and unreadable messages.

Document ids make re-indexing idempotent: ``sha1(source + "\\n" + id)`` for an event, and the
origin (topic, partition, offset) for a dead letter or an unreadable message.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from whale import topics
from whale.binding import KafkaMessage, from_kafka
from whale.cloudevent import CloudEvent, format_time
from whale.errors import BindingError
from whale.es.store import EXTENSIONS

MAX_TEXT = 32_000


@dataclass(frozen=True, slots=True)
class Document:
    when: datetime
    doc_id: str
    body: dict[str, Any]


def event_doc_id(source: str, id_: str) -> str:
    return hashlib.sha1(f"{source}\n{id_}".encode(), usedforsecurity=False).hexdigest()


def _origin_id(kind: str, topic: Any, partition: Any, offset: Any, *more: Any) -> str:
    parts = "\n".join(str(x) for x in (kind, topic, partition, offset, *more))
    return hashlib.sha1(parts.encode(), usedforsecurity=False).hexdigest()


def _letter_id(message: KafkaMessage, origin: tuple[Any, Any, Any], group: str) -> str:
    """A dead letter's id: where it came from, who gave up on it and what it holds (its value and
    CloudEvent headers, not the ``whale_dlq_*`` ones). The same consumer dead-lettering the same
    message again (a retry) writes the same letter; a topic recreated (offsets start again at 0)
    or another group giving up on the same message makes a new one, never overwriting an older
    letter nor inheriting its redrive."""
    held = hashlib.sha1(message.value or b"", usedforsecurity=False)
    for key, value in sorted(message.headers):
        if key.startswith("ce_") or key == "content-type":
            held.update(b"\0" + key.encode() + b"\0" + value)
    return _origin_id("dlq", *origin, group, held.hexdigest())


def _leaves(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _leaves(item, out)
    elif isinstance(value, list):
        for item in value:
            _leaves(item, out)
    elif value is not None:
        out.append(str(value))


def event_fields(event: CloudEvent) -> dict[str, Any]:
    """The searchable form of a CloudEvent (attributes, extensions, data) plus the raw event."""
    doc: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "specversion": event.specversion,
    }
    for name in ("subject", "datacontenttype", "dataschema"):
        value = getattr(event, name)
        if value is not None:
            doc[name] = value
    if event.time is not None:
        doc["time"] = format_time(event.time)
    if event.extensions:
        doc["extensions"] = {k: str(v) for k, v in event.extensions.items()}
        for name in EXTENSIONS:
            if name in event.extensions:
                doc[name] = str(event.extensions[name])
    data = event.data
    if isinstance(data, bytes):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if data is not None:
        doc["data"] = data if isinstance(data, dict) else {"value": data}
        texts: list[str] = []
        _leaves(data, texts)
        doc["data_text"] = " ".join(texts)[:MAX_TEXT]
    doc["raw"] = json.dumps(event.to_structured(), separators=(",", ":"), ensure_ascii=False, default=str)
    return doc


def _headers(message: KafkaMessage) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace")[:1024] for k, v in message.headers}


def document(
    message: KafkaMessage,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    dlq_topic: str = topics.DLQ,
) -> Document:
    """The document of one message from ``topic`` (never raises)."""
    stamp = datetime.fromtimestamp((timestamp_ms or 0) / 1000, UTC) if timestamp_ms else datetime.now(UTC)
    base: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "indexed_at": format_time(datetime.now(UTC)),
    }
    event: CloudEvent | None
    reason = ""
    try:
        event = from_kafka(message)
    except BindingError as exc:
        event = None
        reason = str(exc)
    if topic == dlq_topic:
        dlq = {
            "reason": message.header_text("whale_dlq_reason") or "",
            "topic": message.header_text("whale_dlq_topic") or "",
            "partition": _int(message.header_text("whale_dlq_partition")),
            "offset": _int(message.header_text("whale_dlq_offset")),
            "group": message.header_text("whale_dlq_group") or "",
        }
        origin: tuple[Any, Any, Any] = (
            (dlq["topic"], dlq["partition"], dlq["offset"]) if dlq["topic"] else (topic, partition, offset)
        )
        body = {**base, "kind": "dlq", "dlq": dlq, "headers": _headers(message)}
        doc_id = _letter_id(message, origin, str(dlq["group"]))
    elif event is None:
        body = {**base, "kind": "unreadable", "headers": _headers(message), "dlq": {"reason": reason}}
        doc_id = _origin_id("unreadable", topic, partition, offset)
    else:
        body = {**base, "kind": "event"}
        doc_id = event_doc_id(event.source, event.id)
    if event is not None:
        body.update(event_fields(event))
        when = event.time or stamp
    else:
        when = stamp
        if message.value is not None:
            body["raw"] = _raw_text(message.value)
    body.setdefault("time", format_time(when))
    body["doc_id"] = doc_id
    return Document(when, doc_id, body)


def _raw_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")[:MAX_TEXT]
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value[:MAX_TEXT]).decode()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
