"""The ``whale.action.requested`` record built as plain values, its data encoded once with orjson.

:func:`request_message` writes what ``to_binary(action_request(trigger, source=...),
key=trigger.idempotency_key)`` writes (same headers in the same order, same key, same data), without
building and validating a :class:`whale.cloudevent.CloudEvent`: every value comes from an event the
edges validated, the rule and its rendered params. A unit test compares the two.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson

from whale.binding import CONTENT_TYPE, HEADER_PREFIX, KafkaMessage, header_value
from whale.cloudevent import SPEC_VERSION, format_time
from whale.correlation import link_extensions
from whale_rule_engine.engine import ACTION_REQUESTED, Trigger, request_data, request_id

_JSON = b"application/json"
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode_json(value: Any) -> bytes:
    """``value`` as :func:`whale.binding.encode_data` writes JSON data (compact, UTF-8, ``str`` of
    anything else); orjson, or ``json`` for what orjson refuses (e.g. integers beyond 64 bits,
    non-string keys). Floats with an exponent are spelled without the ``+`` (``1e16``, the same
    number)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        return text.encode("utf-8")


def request_message(trigger: Trigger, *, source: str, now: datetime | None = None) -> KafkaMessage:
    """The action request of ``trigger`` in binary mode, keyed by its idempotency key."""
    cause = trigger.event
    headers: list[tuple[str, bytes]] = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", request_id(trigger).encode()),
        ("ce_source", source.encode("utf-8")),
        ("ce_type", ACTION_REQUESTED.encode()),
    ]
    if cause.subject:
        headers.append(("ce_subject", cause.subject.encode("utf-8")))
    headers.append(("ce_time", format_time(now or datetime.now(UTC)).encode()))
    for name, value in link_extensions(cause).items():
        headers.append((HEADER_PREFIX + name, header_value(value)))
    headers.append((CONTENT_TYPE, _JSON))
    return KafkaMessage(
        key=trigger.idempotency_key.encode("utf-8"),
        value=encode_json(request_data(trigger)),
        headers=tuple(headers),
    )
