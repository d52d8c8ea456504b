"""Causation, correlation and W3C trace context for events that react to other events.

Every event Whale emits in reaction to another carries ``causationid`` (the id of the event that
caused it) and ``correlationid`` (the id of the first event of the chain); ``traceparent`` and
``tracestate`` (the CloudEvents distributed-tracing extension) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from whale.cloudevent import CloudEvent

CAUSATION_ID = "causationid"
CORRELATION_ID = "correlationid"
TRACE_EXTENSIONS = ("traceparent", "tracestate")


class Cause(Protocol):
    """What linking needs of an event: a :class:`CloudEvent` or a lighter form of one."""

    @property
    def id(self) -> str: ...

    @property
    def extensions(self) -> Mapping[str, str | int | bool]: ...


def correlation_id(event: Cause) -> str:
    """The chain's id: the event's ``correlationid``, or its own id when it starts a chain."""
    value = event.extensions.get(CORRELATION_ID)
    return str(value) if value is not None else event.id


def link_extensions(cause: Cause) -> dict[str, str | int | bool]:
    """The extensions a reaction to ``cause`` must carry."""
    ext: dict[str, str | int | bool] = {CAUSATION_ID: cause.id, CORRELATION_ID: correlation_id(cause)}
    for name in TRACE_EXTENSIONS:
        if name in cause.extensions:
            ext[name] = cause.extensions[name]
    return ext


def caused_by(
    cause: CloudEvent, *, type: str, source: str, data: Any = None, **attributes: Any
) -> CloudEvent:
    """A new event reacting to ``cause``, linked to it and to the first event of its chain."""
    extensions = {**dict(attributes.pop("extensions", {}) or {}), **link_extensions(cause)}
    return CloudEvent.create(type=type, source=source, data=data, extensions=extensions, **attributes)
