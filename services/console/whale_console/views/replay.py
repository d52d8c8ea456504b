"""Replay, on the events page: stored events re-enter the bus (``POST /replays``), dry-run by default.

The form takes a time range (UTC), event types (comma- or space-separated), a source and subject,
the mode (``dry``: the rule engine records what it would request and requests nothing; ``live``)
and a limit; the page shows the API's answer: the replay id (its trace shows what the replay
caused), how many events were replayed, whether more matched, and the first of them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import web
from whale_console.views.events import events_context, utc_bound

router = APIRouter()
FIELDS = ("since", "until", "type", "source", "subject", "mode", "limit")
MAX_LIMIT = 10_000


def replay_body(form: dict[str, str]) -> tuple[dict[str, Any], str]:
    """(the request, a problem with the form or '')."""
    values = {name: form.get(name, "").strip() for name in FIELDS}
    if not values["since"]:
        return {}, "since: the first time to replay from (UTC) is required"
    limit = values["limit"] or "1000"
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        return {}, f"limit: a whole number from 1 to {MAX_LIMIT}"
    body: dict[str, Any] = {
        "since": utc_bound(values["since"]),
        "mode": "live" if values["mode"] == "live" else "dry",
        "limit": int(limit),
    }
    if values["until"]:
        body["until"] = utc_bound(values["until"])
    types = [t for t in re.split(r"[,\s]+", values["type"]) if t]
    if types:
        body["type"] = types
    for name in ("source", "subject"):
        if values[name]:
            body[name] = values[name]
    return body, ""


@router.post("/events/replay", include_in_schema=False)
async def replay(request: Request, visit: web.Acting) -> Response:
    form = web.form_of(request)
    context = await events_context(request, visit)
    shown = {name: form.get(name, "") for name in FIELDS}
    shown["mode"] = "live" if shown["mode"] == "live" else "dry"
    context["replay"] = shown
    body, problem = replay_body(form)
    status = 200
    if problem:
        context["replay_problem"] = problem
        status = 400
    else:
        answer = await visit.api.call("POST", "/replays", json=body)
        context["replay_answer"] = answer
        if not answer.ok:
            status = answer.status if answer.status in (400, 403) else 502
    return web.render(request, "events.html", "events", context, visit=visit, status=status)
