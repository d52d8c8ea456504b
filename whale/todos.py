"""The to-do contract shared by the to-do stage (``whale run todo``) and the event center's ``/todos``
API: the event types of commands and announcements, and which item states count as open.

Items live on the compacted ``whale.todos`` topic (key = item id); the API writes command events
(:data:`REQUESTED`, :data:`CHANGE_REQUESTED`) to ``whale.events`` and the stage applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from whale.cloudevent import parse_time

SOURCE = "whale/todo"
SAVED = "whale.todo.saved"
CREATED = "whale.todo.created"
UPDATED = "whale.todo.updated"
RESOLVED = "whale.todo.resolved"
REQUESTED = "whale.todo.requested"
CHANGE_REQUESTED = "whale.todo.change.requested"
OPS = ("claim", "unclaim", "resolve", "comment", "update", "reopen")
OPEN_STATES = ("open", "claimed")
OVERDUE = "whale.todo.overdue"
PRIORITIES = ("p1", "p2", "p3", "p4")
ALIASES = {"critical": "p1", "high": "p2", "normal": "p3", "low": "p4"}


def parse_priority(value: Any) -> str:
    """``p1``..``p4`` (or an alias) -> the ``p`` form; ValueError naming the accepted values."""
    text = str(value).strip().lower()
    found = text if text in PRIORITIES else ALIASES.get(text)
    if found is None:
        raise ValueError(f"priority {value!r}: one of p1, p2, p3, p4 (or critical, high, normal, low)")
    return found


def parse_due(text: Any) -> datetime | None:
    try:
        return parse_time(str(text)) if text else None
    except ValueError:
        return None


def is_overdue(item: Mapping[str, Any], now: datetime, open_states: tuple[str, ...]) -> bool:
    """Open and past its due time (escalated or not): the list's ``overdue=true``."""
    due = parse_due(item.get("due_at"))
    return item.get("status") in open_states and due is not None and due <= now
