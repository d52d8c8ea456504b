"""Working a to-do: assignee, priority, a due time from a per-type SLA, the events merged into it,
reopening by a person, and escalation when an open item passes its due time.

Fields an item carries (added to the JSON of :func:`whale_event_center.todo_items.new_item`):

- ``assignee``: the person working it (``claim`` = assign to the caller; ``unclaim`` clears it);
- ``priority``: ``p1`` (most urgent) .. ``p4``; ``critical|high|normal|low`` are accepted as aliases.
  A new item takes its alert's ``severity`` label (critical -> p1, error/high -> p2, warning -> p3,
  info/low -> p4), else the first matching per-type setting (``WHALE_TODO_PRIORITIES``), else
  ``WHALE_TODO_DEFAULT_PRIORITY``;
- ``sla_seconds`` and ``due_at``: the first matching per-type SLA (``WHALE_TODO_SLA``, type patterns
  with ``*``) or ``WHALE_TODO_SLA_DEFAULT``; the clock restarts when the item is reopened;
- ``overdue_for``: the ``due_at`` already escalated (``whale.todo.overdue`` is emitted once per due time);
- ``merged_events``: id, type, source and time of the events merged into it (the latest
  :data:`MERGED_LIMIT`), ``merged_omitted`` how many older ones were dropped from that list.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from whale.cloudevent import CloudEvent, format_time
from whale.correlation import CORRELATION_ID
from whale.todos import ALIASES, OVERDUE, PRIORITIES, is_overdue, parse_due, parse_priority
from whale_todo.incidents import HISTORY_LIMIT, entry
from whale_todo.items import Change

SEVERITIES = {
    "critical": "p1",
    "emergency": "p1",
    "page": "p1",
    "error": "p2",
    "high": "p2",
    "major": "p2",
    "warning": "p3",
    "warn": "p3",
    "medium": "p3",
    "minor": "p4",
    "info": "p4",
    "low": "p4",
    "none": "p4",
}
MERGED_LIMIT = 20
V = TypeVar("V")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def matching(patterns: Mapping[str, V], kind: str) -> V | None:
    """The value of ``kind`` itself, else of the longest pattern (``*`` wildcards) matching it."""
    if kind in patterns:
        return patterns[kind]
    for pattern in sorted(patterns, key=len, reverse=True):
        if fnmatch.fnmatchcase(kind, pattern):
            return patterns[pattern]
    return None


def severity_priority(event: CloudEvent) -> str | None:
    """The priority an event's ``severity`` (label, or data field) asks for, if it names one."""
    data = event.data if isinstance(event.data, Mapping) else {}
    labels = _mapping(data.get("labels"))
    value = labels.get("severity") or data.get("severity")
    return SEVERITIES.get(str(value).strip().lower()) if isinstance(value, str) else None


def link(event: CloudEvent) -> dict[str, Any]:
    """How ``merged_events`` names an event."""
    return {"id": event.id, "type": event.type, "source": event.source, "time": event.time_text()}


class Policy:
    """The per-type priority and SLA settings of the to-do stage."""

    def __init__(
        self,
        *,
        sla: Mapping[str, float],
        sla_default: float | None,
        priorities: Mapping[str, str],
        default_priority: str,
    ) -> None:
        self.sla, self.sla_default = dict(sla), sla_default
        self.priorities = {k: parse_priority(v) for k, v in priorities.items()}
        self.default_priority = parse_priority(default_priority)

    def priority(self, kind: str, event: CloudEvent) -> str:
        return severity_priority(event) or matching(self.priorities, kind) or self.default_priority

    def sla_seconds(self, kind: str) -> float | None:
        found = matching(self.sla, kind)
        seconds = self.sla_default if found is None else found
        return seconds if seconds and seconds > 0 else None


def due_from(seconds: Any, now: datetime) -> str | None:
    return format_time(now + timedelta(seconds=float(seconds))) if seconds else None


def start(item: dict[str, Any], event: CloudEvent, policy: Policy, now: datetime) -> None:
    """A new item's work fields: nobody assigned, priority and due time from its type's policy."""
    kind = str(item.get("type") or event.type)
    seconds = policy.sla_seconds(kind)
    item.update(
        assignee=None,
        priority=policy.priority(kind, event),
        sla_seconds=seconds,
        due_at=due_from(seconds, now),
        overdue_for=None,
        merged_events=[link(event)],
        merged_omitted=0,
    )


def merged(item: dict[str, Any], event: CloudEvent) -> None:
    """Record ``event`` among the events merged into the item (bounded, with a count of the dropped)."""
    links = [*item.get("merged_events", []), link(event)]
    dropped = max(0, len(links) - MERGED_LIMIT)
    item["merged_events"] = links[dropped:]
    item["merged_omitted"] = int(item.get("merged_omitted", 0)) + dropped


def restart_clock(item: dict[str, Any], policy: Policy, now: datetime) -> None:
    seconds = item.get("sla_seconds", policy.sla_seconds(str(item.get("type", ""))))
    item.update(sla_seconds=seconds, due_at=due_from(seconds, now), overdue_for=None)


def after(change: Change, event: CloudEvent, policy: Policy, now: datetime | None = None) -> None:
    """Keep the work fields of a changed item (a decision of the stage) in step with the change."""
    item, now = change.item, now or datetime.now(UTC)
    if change.change == "created":
        start(item, event, policy, now)
    elif change.change in ("merged", "recorded", "reopened"):
        merged(item, event)
    if change.change == "reopened":  # a new episode: nobody works it yet, and the clock restarts
        item["assignee"] = None
        restart_clock(item, policy, now)
    elif change.change == "claim":
        item["assignee"] = change.by
    elif change.change == "unclaim":
        item["assignee"] = None


def history(item: Mapping[str, Any], kind: str, text: str, event: CloudEvent, at: str) -> list[Any]:
    return [*item.get("history", []), entry(kind, text, event, at)][-HISTORY_LIMIT:]


def update(item: dict[str, Any], data: Mapping[str, Any], by: str, event: CloudEvent, at: str) -> None:
    """A person's ``update`` command: the fields it names (assignee, priority, due)."""
    fields = _mapping(data.get("fields"))
    said: list[str] = []
    if "assignee" in fields:
        assignee = fields["assignee"] or None
        item.update(assignee=assignee, claimed_by=assignee, status="claimed" if assignee else "open")
        said.append(f"assigned to {assignee}" if assignee else "unassigned")
    if "priority" in fields:
        try:
            item["priority"] = parse_priority(fields["priority"])
            said.append(f"priority {item['priority']}")
        except ValueError:
            pass  # the API validated it; an old or hand-written command is ignored
    if "due" in fields:
        due = parse_due(fields["due"])
        item.update(due_at=format_time(due) if due else None, overdue_for=None)
        said.append(f"due {item['due_at']}" if due else "no due time")
    item["history"] = history(item, "updated", f"{by}: {', '.join(said) or 'no change'}", event, at)


def reopen(
    item: dict[str, Any], by: str, comment: Any, event: CloudEvent, policy: Policy, now: datetime
) -> None:
    """A person reopens a resolved item: open again (still assigned, if it was), the clock restarts."""
    assignee = item.get("assignee")
    item.update(
        status="claimed" if assignee else "open",
        claimed_by=assignee,
        resolved_by=None,
        resolution=None,
        resolved_episode=None,
        reopened=int(item.get("reopened", 0)) + 1,
    )
    restart_clock(item, policy, now)
    text = f"reopened by {by}" + (f": {comment}" if comment else "")
    item["history"] = history(item, "reopened", text, event, format_time(now))


def overdue(item: Mapping[str, Any], now: datetime, open_states: tuple[str, ...]) -> float | None:
    """Seconds ``item`` is late if it is open, past its due time and not yet escalated for it."""
    due = parse_due(item.get("due_at"))
    if item.get("status") not in open_states or due is None or item.get("overdue_for") == item["due_at"]:
        return None
    late = (now - due).total_seconds()
    return late if late >= 0 else None


def escalation(item: Mapping[str, Any], late: float, source: str) -> tuple[dict[str, Any], CloudEvent]:
    """(the item marked escalated for its due time, the ``whale.todo.overdue`` event)."""
    data = {
        "todo_id": item["id"],
        "title": item.get("title"),
        "assignee": item.get("assignee"),
        "priority": item.get("priority"),
        "due_at": item.get("due_at"),
        "late_seconds": round(late, 3),
        "status": item.get("status"),
        "type": item.get("type"),
        "subject": item.get("subject"),
        "key": item.get("key"),
    }
    ext = {CORRELATION_ID: item["correlationid"]} if item.get("correlationid") else {}
    event = CloudEvent.create(type=OVERDUE, source=source, subject=str(item["id"]), data=data, **ext)
    at = format_time(datetime.now(UTC))
    text = f"overdue: due {item.get('due_at')}, {int(late)}s late (priority {item.get('priority')})"
    marked = {
        **item,
        "overdue_for": item.get("due_at"),
        "updated_at": at,
        "history": history(item, "overdue", text, event, at),
    }
    return marked, event


__all__ = ["ALIASES", "OVERDUE", "PRIORITIES", "is_overdue", "parse_due", "parse_priority"]
