"""Events: search (type, source, subject, time range, free text in data), one event, a live tail.

The event center's API has no streaming tail, so the live view polls ``GET /events`` (newest first)
every few seconds through htmx and replaces the table; the search is ``GET /events`` with the
filters as given. Times in the form are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import web

router = APIRouter()
FIELDS = ("type", "source", "source_prefix", "subject", "since", "until", "q", "correlationid", "kind")
TAIL_SIZE = 25
TAIL_SECONDS = 3


def utc_bound(value: str) -> str:
    """A time from the form (``datetime-local``, UTC) as RFC 3339; other text is passed as given."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def search_params(request: Request, *, kind: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """(the form's values, the API's query parameters)."""
    q = request.query_params
    form = {name: q.get(name, "").strip() for name in FIELDS}
    if kind is not None:
        form["kind"] = kind
    params: dict[str, Any] = {k: v for k, v in form.items() if v}
    for name in ("since", "until"):
        if name in params:
            params[name] = utc_bound(params[name])
    params["size"] = q.get("size", "50") if q.get("size", "50").isdigit() else "50"
    if q.get("after"):
        params["after"] = q["after"]
    return form, params


def event_attr(found: dict[str, Any], name: str) -> Any:
    event = found.get("event")
    return event.get(name) if isinstance(event, dict) else None


def template_globals() -> dict[str, Any]:
    return {"attr": event_attr}


async def search(visit: web.Visit, form: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    """One page of ``GET /events``: the template's ``answer``, ``found`` and ``next_query`` (older page)."""
    answer = await visit.api.maybe("/events", params)
    next_query = None
    if answer.ok and answer.body.get("next"):
        next_query = urlencode({**{k: v for k, v in form.items() if v}, "after": answer.body["next"]})
    return {
        "answer": answer,
        "found": answer.body.get("events", []) if answer.ok else [],
        "next_query": next_query,
    }


async def events_context(request: Request, visit: web.Visit) -> dict[str, Any]:
    """The events page's context (the search of the query string; the replay view adds its result)."""
    form, params = search_params(request)
    page = await search(visit, form, params)
    return {
        "title": "Events",
        "form": form,
        "events": page["found"],
        "answer": page["answer"],
        "next_query": page["next_query"],
        "live": request.query_params.get("live") == "1",
        "tail_seconds": TAIL_SECONDS,
        **template_globals(),
        "replay": {"mode": "dry", "limit": "100"},
        "replay_answer": None,
        "replay_why": "" if visit.may("operator") else "needs the operator role",
    }


@router.get("/events", include_in_schema=False)
async def events_page(request: Request, visit: web.Viewing) -> Response:
    context = await events_context(request, visit)
    return web.render(request, "events.html", "events", context, visit=visit, status=200)


@router.get("/events/tail", include_in_schema=False)
async def events_tail(request: Request, visit: web.Viewing) -> Response:
    """The newest events (the live view polls this fragment)."""
    answer = await visit.api.maybe("/events", {"size": TAIL_SIZE})
    found = answer.body.get("events", []) if answer.ok else []
    context = {
        "events": found,
        "answer": answer,
        "polled": datetime.now(UTC).strftime("%H:%M:%S"),
        **template_globals(),
    }
    return web.render(request, "_event_rows.html", "events", context, visit=visit)


@router.get("/events/{source:path}/{event_id}", include_in_schema=False)
async def event_page(request: Request, source: str, event_id: str, visit: web.Viewing) -> Response:
    found = await visit.api.get(f"/events/{quote(source, safe='/')}/{quote(event_id, safe='')}")
    event = found.get("event") if isinstance(found.get("event"), dict) else {}
    attributes = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
    context = {
        "title": f"Event {event_id}",
        "found": found,
        "event": event,
        "attributes": attributes,
        "data": event.get("data", event.get("data_base64")),
        "source": source,
        "event_id": event_id,
    }
    return web.render(request, "event.html", "events", context, visit=visit)
