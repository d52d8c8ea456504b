"""Approvals: the pending ones with their context, approve or deny with a comment (and a response).

Each card shows the run and its workflow, the task, the question, since when and until when it
waits, who may answer, and the event that started the run (from ``GET /runs/{id}``'s trigger, with
its trace). Answers go to ``POST /approvals/{id}`` as the signed-in person; the API decides who may
answer (403), checks the ``response`` against the approval's ``response_schema`` (400, shown beside
each field) and refuses a second answer (409). htmx swaps the card in place; without JavaScript the
approval's own page is answered.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale.authz import Role
from whale_console import schema_form, web

router = APIRouter()
DECISIONS = {"approve": "approved", "deny": "denied"}
CONTEXT_RUNS = 50  # the runs fetched for a list's context (the rest link to their run)


def who_may(visit: web.Visit, approvers: Any) -> str:
    """Why this person may not answer ('' when they may, as far as the console can tell)."""
    if not visit.may("operator"):
        return "needs the operator role"
    if not isinstance(approvers, dict) or visit.session.via == "dev":
        return ""
    people = approvers.get("people") or []
    role = approvers.get("role")
    if visit.session.name in people:
        return ""
    if role is not None:
        try:
            if visit.session.level >= Role.parse(str(role)):
                return ""
        except ValueError:
            return ""
    names = ([f"role {role} or higher"] if role else []) + ([", ".join(people)] if people else [])
    return f"only {' or '.join(names)} may answer" if names else ""


async def _run(visit: web.Visit, run_id: Any) -> dict[str, Any]:
    if not isinstance(run_id, str):
        return {}
    answer = await visit.api.maybe(f"/runs/{quote(run_id, safe='')}")
    return web.as_dict(answer.body) if answer.ok else {}


def card(
    visit: web.Visit,
    item: dict[str, Any],
    run: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The context of one approval's card."""
    event = web.as_dict(web.as_dict(web.as_dict(run.get("trigger")).get("event")).get("event"))
    return {
        "item": item,
        "run": run,
        "event": event,
        "correlationid": run.get("correlationid") or event.get("correlationid"),
        "why_not": who_may(visit, item.get("approvers")),
        "fields": schema_form.fields_of(item.get("response_schema")),
        "values": {},
        "field_problems": {},
        "problems": [],
        "message": "",
        "ok": True,
        "answered": False,
        **extra,
    }


@router.get("/approvals", include_in_schema=False)
async def approval_list(request: Request, visit: web.Viewing) -> Response:
    body = await visit.api.get("/approvals")
    items = [a for a in body.get("approvals", []) if isinstance(a, dict)]
    runs = await asyncio.gather(*(_run(visit, a.get("run_id")) for a in items[:CONTEXT_RUNS]))
    cards = [card(visit, a, runs[i] if i < len(runs) else {}) for i, a in enumerate(items)]
    context = {"title": "Approvals", "cards": cards, "total": body.get("total", len(items))}
    return web.render(request, "approvals.html", "approvals", context, visit=visit)


@router.get("/approvals/{approval_id}", include_in_schema=False)
async def approval_page(request: Request, approval_id: str, visit: web.Viewing) -> Response:
    item = await visit.api.get(f"/approvals/{quote(approval_id, safe='')}")
    context = {"title": f"Approval {approval_id}", **card(visit, item, await _run(visit, item.get("run_id")))}
    return web.render(request, "approval.html", "approvals", context, visit=visit)


@router.post("/approvals/{approval_id}/{decision}", include_in_schema=False)
async def answer(request: Request, approval_id: str, decision: str, visit: web.Acting) -> Response:
    form = web.form_of(request)
    path = f"/approvals/{quote(approval_id, safe='')}"
    item = await visit.api.get(path)
    run = await _run(visit, item.get("run_id"))
    values = {
        k: v for k, v in form.items() if k.startswith(schema_form.PREFIX) or k == schema_form.JSON_FIELD
    }
    values["comment"] = form.get("comment", "")
    shown = card(visit, item, run, values=values)
    status = 200
    response, bad_json = schema_form.response_of(item.get("response_schema"), form)
    if decision not in DECISIONS:
        shown.update(message=f"unknown decision {decision!r}", ok=False)
        status = 400
    elif bad_json:
        shown.update(message=bad_json, ok=False, field_problems={schema_form.JSON_FIELD: bad_json})
        status = 400
    else:
        sent = {
            "decision": decision,
            "comment": form.get("comment", "").strip() or None,
            "response": response,
        }
        result = await visit.api.call("POST", path, json=sent)
        if result.ok:
            shown.update(
                message=f"{DECISIONS[decision]} as {visit.session.name}; the workflow continues",
                answered=True,
            )
        else:
            by_field, rest = schema_form.problems_by_field(result.problems)
            shown.update(message=result.message, ok=False, field_problems=by_field, problems=rest)
            status = result.status if result.status in (400, 403, 404, 409) else 502
    template = "_approval_card.html" if web.is_htmx(request) else "approval.html"
    # htmx swaps only 2xx answers by default: the card comes back 200 with the refusal inside it
    code = 200 if web.is_htmx(request) else status
    context = {"title": f"Approval {approval_id}", **shown}
    return web.render(request, template, "approvals", context, visit=visit, status=code)
