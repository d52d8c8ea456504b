"""CloudEvents Kafka protocol binding as pure functions over a plain message type.

Whale writes binary content mode: every context attribute and extension is a ``ce_<name>`` header,
``content-type`` carries ``datacontenttype`` and the value is the data. Reading accepts binary mode
and structured mode (``content-type: application/cloudevents+json``, the whole event as the value).
The key is the ``partitionkey`` extension, else the subject, else none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from whale.cloudevent import CONTEXT_ATTRIBUTES, CloudEvent, format_time, validate_event
from whale.errors import BindingError, EventError

HEADER_PREFIX = "ce_"
CONTENT_TYPE = "content-type"
STRUCTURED_PREFIX = "application/cloudevents"
JSON_TYPES = ("application/json", "text/json")

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    """What Kafka stores: a key, a value and ordered headers (no broker metadata)."""

    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=tuple)

    def header(self, name: str) -> bytes | None:
        """The last header of that name (case-insensitive), or None."""
        found = None
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                found = value
        return found

    def header_text(self, name: str) -> str | None:
        value = self.header(name)
        return None if value is None else value.decode("utf-8", "replace")


def is_json_content(content_type: str | None) -> bool:
    if content_type is None:
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    return base in JSON_TYPES or base.endswith("+json")


def encode_data(event: CloudEvent) -> bytes | None:
    """The data as bytes: bytes as they are, JSON for JSON content types, UTF-8 for text."""
    data = event.data
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and not is_json_content(event.datacontenttype):
        return data.encode("utf-8")
    return _DATA_JSON.encode(data).encode("utf-8")


# what json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str) writes, without
# building an encoder per call (half the cost of a small event's data)
_DATA_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def header_value(value: Any) -> bytes:
    """An extension value as a header: booleans as ``true``/``false``, the rest as text."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode("utf-8")


def to_binary(event: CloudEvent, key: str | None = None) -> KafkaMessage:
    """Binary content mode. ``key`` overrides the event's own partition key."""
    headers: list[tuple[str, bytes]] = [
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", event.id.encode("utf-8")),
        ("ce_source", event.source.encode("utf-8")),
        ("ce_type", event.type.encode("utf-8")),
    ]
    if event.subject:  # never an empty ce_subject: SDKs refuse it
        headers.append(("ce_subject", event.subject.encode("utf-8")))
    if event.time is not None:
        headers.append(("ce_time", format_time(event.time).encode()))
    if event.dataschema is not None:
        headers.append(("ce_dataschema", event.dataschema.encode("utf-8")))
    for name, value in event.extensions.items():
        headers.append((HEADER_PREFIX + name, header_value(value)))
    if event.datacontenttype is not None:
        headers.append((CONTENT_TYPE, event.datacontenttype.encode("utf-8")))
    partition_key = key if key is not None else event.partition_key
    return KafkaMessage(
        key=partition_key.encode("utf-8") if partition_key is not None else None,
        value=encode_data(event),
        headers=tuple(headers),
    )


def to_structured(event: CloudEvent, key: str | None = None) -> KafkaMessage:
    """Structured content mode (Whale reads it; it writes binary mode)."""
    partition_key = key if key is not None else event.partition_key
    return KafkaMessage(
        key=partition_key.encode("utf-8") if partition_key is not None else None,
        value=event.to_json(),
        headers=((CONTENT_TYPE, b"application/cloudevents+json; charset=utf-8"),),
    )


def from_kafka(message: KafkaMessage) -> CloudEvent:
    """Read either content mode. Raises :class:`BindingError` (poison) with the reason."""
    content_type = message.header_text(CONTENT_TYPE)
    try:
        if content_type is not None and content_type.lower().startswith(STRUCTURED_PREFIX):
            return _from_structured(message)
        if message.header("ce_specversion") is None and _looks_structured(message.value):
            # Some producers (the Python SDK among them) label structured events plain JSON.
            return _from_structured(message)
        return _from_binary(message, content_type)
    except BindingError:
        raise
    except EventError as exc:
        raise BindingError(exc.message, exc.problems) from None


def _looks_structured(value: bytes | None) -> bool:
    if not value or not value.lstrip().startswith(b"{"):
        return False
    try:
        doc = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and "specversion" in doc


def _from_structured(message: KafkaMessage) -> CloudEvent:
    if message.value is None:
        raise BindingError(
            "structured CloudEvent has an empty value", [{"field": "value", "message": "empty"}]
        )
    try:
        doc = json.loads(message.value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise BindingError(
            f"structured CloudEvent is not valid JSON: {reason}", [{"field": "value", "message": reason}]
        ) from None
    return CloudEvent.from_structured(doc)


def _from_binary(message: KafkaMessage, content_type: str | None) -> CloudEvent:
    attrs: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    for name, raw in message.headers:
        lowered = name.lower()
        if not lowered.startswith(HEADER_PREFIX):
            continue
        attr = lowered[len(HEADER_PREFIX) :]
        try:
            text = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            raise BindingError(
                f"header {name} is not UTF-8", [{"field": attr, "message": "header is not UTF-8"}]
            ) from None
        if attr == "subject" and not text:
            continue  # written by older Whale versions: an empty subject is no subject
        if attr in CONTEXT_ATTRIBUTES:
            attrs[attr] = text
        else:
            ext[attr] = text
    if "specversion" not in attrs:
        raise BindingError(
            "not a CloudEvent: no ce_specversion header and no structured content-type",
            [{"field": "specversion", "message": "required attribute is missing"}],
        )
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    attrs["data"] = decode_data(message.value, content_type)
    return validate_event({**attrs, "extensions": ext})


def decode_data(value: bytes | None, content_type: str | None) -> Any:
    """JSON content types are parsed; anything else stays bytes."""
    if value is None:
        return None
    if content_type is not None and is_json_content(content_type):
        try:
            return json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BindingError(
                f"data is declared {content_type} but is not valid JSON: {exc}",
                [{"field": "data", "message": f"not valid JSON: {exc}"}],
            ) from None
        except RecursionError:
            raise BindingError(
                "data is nested too deeply to read", [{"field": "data", "message": "nested too deeply"}]
            ) from None
    return value


def headers_from(raw: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes] | None) -> Headers:
    """Normalise confluent-kafka / aiokafka header shapes into :data:`Headers`."""
    if raw is None:
        return ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    return tuple((str(k), v if v is not None else b"") for k, v in items)
