"""Dead letters: search ``GET /dlq`` (reason, topic, group, time range), redrive one or a filter.

A redrive goes to ``POST /dlq/{id}/redrive`` (one letter; 409 when it was redriven already) or
``POST /dlq/redrive`` with the filter (reason / topic / group / time range, or every letter with
``all``) and a limit; the page shows what was redriven (the new event and the topic it re-entered
through) and what was skipped, and why. Operators only; a viewer sees the buttons disabled.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import web
from whale_console.views.events import utc_bound

router = APIRouter()
FIELDS = ("reason", "topic", "group", "since", "until")
SIZE = 50
MAX_LIMIT = 1000


def _filter(values: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(the form's values, the API's filter: times as RFC 3339)."""
    form = {name: str(values.get(name, "")).strip() for name in FIELDS}
    sent = {k: v for k, v in form.items() if v}
    for name in ("since", "until"):
        if name in sent:
            sent[name] = utc_bound(sent[name])
    return form, sent


async def _page(
    request: Request, visit: web.Visit, form: dict[str, str], sent: dict[str, str], **shown: Any
) -> Response:
    params: dict[str, Any] = {**sent, "size": SIZE}
    after = request.query_params.get("after")
    if after:
        params["after"] = after
    answer = await visit.api.maybe("/dlq", params)
    next_query = None
    if answer.ok and answer.body.get("next"):
        next_query = urlencode({**{k: v for k, v in form.items() if v}, "after": answer.body["next"]})
    context = {
        "title": "Dead letters",
        "form": form,
        "answer": answer,
        "letters": answer.body.get("dead_letters", []) if answer.ok else [],
        "next_query": next_query,
        "why": "" if visit.may("operator") else "needs the operator role",
        "message": "",
        "ok": True,
        "result": None,
        **shown,
    }
    return web.render(
        request, "deadletters.html", "deadletters", context, visit=visit, status=shown.get("status", 200)
    )


@router.get("/dead-letters", include_in_schema=False)
async def dead_letters(request: Request, visit: web.Viewing) -> Response:
    form, sent = _filter(request.query_params)
    return await _page(request, visit, form, sent)


@router.post("/dead-letters/redrive", include_in_schema=False)
async def redrive_filtered(request: Request, visit: web.Acting) -> Response:
    values = web.form_of(request)
    form, sent = _filter(values)
    every = values.get("all") in ("on", "true", "1")
    raw = values.get("limit", "100").strip()
    limit = int(raw) if raw.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        message = f"limit: a whole number from 1 to {MAX_LIMIT}"
        return await _page(request, visit, form, sent, message=message, ok=False, status=400)
    if not sent and not every:
        message = "name a reason, topic, group or time range, or tick every dead letter"
        return await _page(request, visit, form, sent, message=message, ok=False, status=400)
    body: dict[str, Any] = {**sent, "limit": limit, **({"all": True} if every and not sent else {})}
    answer = await visit.api.call("POST", "/dlq/redrive", json=body)
    if not answer.ok:
        status = answer.status if answer.status in (400, 403, 409) else 502
        problems = answer.problems
        return await _page(request, visit, form, sent, message=answer.message, ok=False, problems=problems,
                           status=status)  # fmt: skip
    result = answer.body
    message = f"redriven {len(result.get('redriven', []))}, skipped {len(result.get('skipped', []))}"
    return await _page(request, visit, form, sent, message=message, result=result)


@router.post("/dead-letters/{letter_id}/redrive", include_in_schema=False)
async def redrive_one(request: Request, letter_id: str, visit: web.Acting) -> Response:
    answer = await visit.api.call("POST", f"/dlq/{quote(letter_id, safe='')}/redrive")
    form, sent = _filter(web.form_of(request))
    if answer.ok:
        result = {"redriven": [answer.body], "skipped": []}
        return await _page(request, visit, form, sent, message=f"{letter_id}: redriven", result=result)
    status = answer.status if answer.status in (403, 404, 409) else 502
    result = {"redriven": [], "skipped": [{"id": letter_id, "why": answer.message}]}
    return await _page(
        request,
        visit,
        form,
        sent,
        message=f"{letter_id}: {answer.message}",
        ok=False,
        result=result,
        status=status,
    )
