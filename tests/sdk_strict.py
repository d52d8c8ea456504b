"""Read a Kafka message as outside consumers do: the official CloudEvents SDK for Python (core v1,
which validates every attribute) plus the stricter rules the Go, Java and JavaScript SDKs apply to
header values (UTF-8 without control characters, RFC 3339 time, non-empty subject, URI source)."""

from __future__ import annotations

import re
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage as SdkMessage
from cloudevents.core.bindings.kafka import from_kafka as sdk_from_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from whale.binding import KafkaMessage

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}|[^\x00-\x7f])+$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def read_strict(message: KafkaMessage) -> Any:
    """The SDK's event for ``message``; AssertionError or the SDK's error when a reader would refuse it."""
    headers: dict[str, bytes] = {}
    for name, value in message.headers:
        text = value.decode("utf-8")  # raises for non-UTF-8, as every SDK does
        if name.lower().startswith("ce_"):
            assert not CONTROL.search(text), f"header {name} holds a control character: {text!r}"
        headers[name] = value
    attrs = {k[3:].lower(): v.decode() for k, v in headers.items() if k.lower().startswith("ce_")}
    if "time" in attrs:
        assert RFC3339.match(attrs["time"]), f"ce_time {attrs['time']!r} is not RFC 3339 as SDKs parse it"
    if "subject" in attrs:
        assert attrs["subject"], "ce_subject is empty (the JavaScript SDK refuses it)"
    if "source" in attrs:
        assert URI_REFERENCE.match(attrs["source"]), f"ce_source {attrs['source']!r} is not a URI-reference"
    for name in attrs:
        assert re.match(r"^[a-z0-9]+$", name), f"extension name {name!r} is not lower-case alphanumeric"
    sdk_message = SdkMessage(headers=headers, key=message.key, value=message.value or b"")
    event = sdk_from_kafka(sdk_message, JSONFormat(), SdkEvent)
    assert isinstance(event, SdkEvent)
    return event
