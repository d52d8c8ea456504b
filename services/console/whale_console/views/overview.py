"""Overview: figures the event center's API can give, each with a small chart.

Counts come from searching the last hour (``GET /events``, paged up to :data:`CAP` events; a
figure at the cap is shown as "at least"), the to-do list, the rules, schemas and subscriptions.
Consumer lag per stage is not in the API (each stage exports it on ``/metrics`` for Prometheus);
the page says so rather than reading Kafka itself.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale import topics
from whale_console import rulebook, web
from whale_console.api import Api

router = APIRouter()
CAP = 2000
PAGE = 500
BUCKETS = 12  # five-minute bars over the hour
ACTIONS = {
    "started": ("whale.action.requested", "whale.workflow.started"),
    "succeeded": ("whale.action.succeeded", "whale.workflow.completed"),
    "failed": (
        "whale.action.failed",
        "whale.action.timed_out",
        "whale.action.abandoned",
        "whale.workflow.failed",
    ),
}


async def recent(api: Api, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Events of the last hour matching ``params`` (newest first), and whether the cap cut them."""
    out: list[dict[str, Any]] = []
    after = None
    while len(out) < CAP:
        answer = await api.maybe("/events", {**params, "size": PAGE, **({"after": after} if after else {})})
        if not answer.ok:
            break
        out.extend(answer.body.get("events", []))
        after = answer.body.get("next")
        if not after:
            return out, False
    return out[:CAP], len(out) >= CAP


def buckets(found: list[dict[str, Any]], start: datetime, field: str = "time") -> list[int]:
    """Counts per five minutes since ``start`` of the items' ``field`` (an RFC 3339 time)."""
    counts = [0] * BUCKETS
    for f in found:
        try:
            when = datetime.fromisoformat(str(f.get(field)).replace("Z", "+00:00"))
        except ValueError:
            continue
        index = int((when - start).total_seconds() // 300)
        if 0 <= index < BUCKETS:
            counts[index] += 1
    return counts


def _type(found: dict[str, Any]) -> str:
    event = found.get("event")
    return str(event.get("type")) if isinstance(event, dict) else "(unreadable)"


@router.get("/overview", include_in_schema=False)
async def overview(request: Request, visit: web.Viewing) -> Response:
    now = datetime.now(UTC)
    start = now - timedelta(hours=1)
    since = start.isoformat()
    events, capped = await recent(visit.api, {"since": since, "kind": "event"})
    letters, letters_capped = await recent(visit.api, {"since": since, "topic": topics.DLQ})
    by_type = Counter(_type(f) for f in events)
    actions = {name: sum(by_type[t] for t in kinds) for name, kinds in ACTIONS.items()}
    action_buckets = {
        name: buckets([f for f in events if _type(f) in kinds], start) for name, kinds in ACTIONS.items()
    }
    todos = await visit.api.maybe("/todos", {"status": "active", "limit": 1000})
    rules = await visit.api.maybe("/rules")
    subs = await visit.api.maybe("/subscriptions")
    schemas = await visit.api.maybe("/schemas")
    open_items = todos.body.get("todos", []) if todos.ok else []
    context = {
        "title": "Overview",
        "events": len(events),
        "capped": capped,
        "per_minute": round(len(events) / 60, 1),
        "event_buckets": buckets(events, start),
        "by_type": by_type.most_common(10),
        "actions": actions,
        "action_buckets": action_buckets,
        "todo_buckets": buckets(open_items, start, "created_at"),
        "letters": len(letters),
        "letters_capped": letters_capped,
        "letter_buckets": buckets(letters, start),
        "todos_total": todos.body.get("total", 0) if todos.ok else None,
        "todos_claimed": sum(1 for i in open_items if i.get("status") == "claimed"),
        "rules": len(
            rulebook.book(rules.body.get("rules", []), web.settings_of(request).whale.rules_dir).entries
        )
        if rules.ok
        else None,
        "subscriptions": subs.body.get("subscriptions", []) if subs.ok else [],
        "schemas": len(schemas.body.get("types", [])) if schemas.ok else None,
        "cap": CAP,
    }
    return web.render(request, "overview.html", "overview", context, visit=visit)
