"""A to-do item: how one starts, and what a change to one is (shared by the to-do stage's decisions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from whale.cloudevent import CloudEvent, format_time
from whale.correlation import correlation_id
from whale.todos import CREATED, RESOLVED, UPDATED

__all__ = ["CREATED", "RESOLVED", "UPDATED", "Change", "event_ref", "new_item", "now_text"]


def now_text() -> str:
    return format_time(datetime.now(UTC))


def event_ref(event: CloudEvent) -> dict[str, Any]:
    """How an item names an event (``first_event``, ``last_event``)."""
    return {"source": event.source, "id": event.id, "time": event.time_text()}


@dataclass(frozen=True, slots=True)
class Change:
    """What an event did to one item: the new state and the announcement type."""

    item: dict[str, Any]
    type: str
    change: str
    by: str | None = None


def new_item(
    event: CloudEvent, *, key: str, title: str, kind: str, origin: str, details: Any
) -> dict[str, Any]:
    """A new open item started by ``event``."""
    stamp = now_text()
    ref = event_ref(event)
    return {
        "id": str(uuid.uuid4()),
        "key": key,
        "status": "open",
        "title": title,
        "type": kind,
        "subject": event.subject,
        "origin": origin,
        "count": 1,
        "details": details,
        "first_event": ref,
        "last_event": ref,
        "correlationid": correlation_id(event),
        "created_at": stamp,
        "updated_at": stamp,
        "claimed_by": None,
        "resolved_by": None,
        "resolution": None,
        "comments": [],
        "last_command": None,
        "seen": [event.id],
    }
