"""A chain (``GET /traces/{id}``: events in causal order, each with its depth) laid out as a graph.

Each hop is a row; its column is its depth, and an edge joins it to the hop that caused it, so
event → rule's action request → results (or workflow tasks) read top-down and left to right. The
layout is plain numbers the template draws as inline SVG; timings are seconds since the chain's
first event and since the cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ROW = 46
COLUMN = 28
WIDTH = 520
HEIGHT = 34
FAILED_WORDS = ("failed", "error", "denied", "timed_out", "timeout", "rejected", "cancelled")


@dataclass
class Hop:
    index: int
    id: str
    type: str
    source: str
    kind: str
    depth: int
    cause: str | None
    time: datetime | None
    failed: bool
    reason: str = ""
    rule: str = ""  # the rule that requested it (action requests and results carry it)
    since_start: float | None = None
    since_cause: float | None = None
    x: int = 0
    y: int = 0
    parent: int | None = None
    children: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.type or "(unreadable)"


def _event(step: dict[str, Any]) -> dict[str, Any]:
    event = step.get("event")
    return event if isinstance(event, dict) else {}


def _rule(event: dict[str, Any]) -> str:
    data = event.get("data")
    rule = data.get("rule") if isinstance(data, dict) else None
    return str(rule.get("id", "")) if isinstance(rule, dict) else ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def failure(step: dict[str, Any]) -> tuple[bool, str]:
    """Whether a hop is a failure (dead letter, unreadable, a failed/denied/timed-out result) and why."""
    if step.get("kind") not in (None, "event"):
        reason = (step.get("dlq") or {}).get("reason") if isinstance(step.get("dlq"), dict) else None
        return True, str(reason or step.get("kind"))
    event = _event(step)
    type_ = str(event.get("type", "")).lower()
    found = event.get("data")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    status = str(data.get("status", "")).lower()
    if any(word in type_.rsplit(".", 1)[-1] for word in FAILED_WORDS) or status in FAILED_WORDS:
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return True, str(message or data.get("reason") or status or type_)
    return False, ""


def layout(steps: list[dict[str, Any]]) -> tuple[list[Hop], int, int]:
    """(hops with positions, svg width, svg height) of a trace's steps (already in causal order)."""
    hops: list[Hop] = []
    by_id: dict[str, int] = {}
    for index, step in enumerate(steps):
        event = _event(step)
        failed, reason = failure(step)
        hop = Hop(
            index=index,
            id=str(event.get("id", "")),
            type=str(event.get("type", "")),
            source=str(event.get("source", "")),
            kind=str(step.get("kind") or "event"),
            depth=int(step.get("depth") or 0),
            cause=step.get("causationid"),
            time=_time(event.get("time") or step.get("time")),
            failed=failed,
            reason=reason[:200],
            rule=_rule(event),
        )
        hop.x = 8 + hop.depth * COLUMN
        hop.y = 8 + index * ROW
        if hop.cause is not None and hop.cause in by_id:
            hop.parent = by_id[hop.cause]
            hops[hop.parent].children.append(index)
        by_id.setdefault(hop.id, index)
        hops.append(hop)
    start = min((h.time for h in hops if h.time is not None), default=None)
    for hop in hops:
        if hop.time is not None and start is not None:
            hop.since_start = (hop.time - start).total_seconds()
            parent = hops[hop.parent] if hop.parent is not None else None
            if parent is not None and parent.time is not None:
                hop.since_cause = (hop.time - parent.time).total_seconds()
    depth = max((h.depth for h in hops), default=0)
    return hops, 16 + depth * COLUMN + WIDTH, 16 + len(hops) * ROW
