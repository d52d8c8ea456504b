"""Runs: workflow and action runs with filters, one run's tasks, cancel / retry / pause / resume.

The list is ``GET /runs`` (state, including ``active``; kind; name; pool), one run is
``GET /runs/{id}`` (each task's state, attempts, timings, output, error; the trigger and its trace).
Operators get the buttons the run's state allows; a viewer, or a state that forbids an action, gets
the button disabled with the reason. The API checks again (409 when the state changed meanwhile).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import web

router = APIRouter()
STATES = ("all", "active", "running", "waiting", "succeeded", "failed", "timed_out", "abandoned", "cancelled")
KINDS = ("", "workflow", "action")
ACTIVE = ("running", "waiting", "paused")
RETRYABLE = ("failed", "cancelled", "timed_out", "abandoned")
OPS = ("cancel", "pause", "resume", "retry")
PAGE = 50


def why_not(visit: web.Visit, run: dict[str, Any], op: str) -> str:
    """Why ``op`` is not offered on ``run`` ('' when it is)."""
    state = str(run.get("state", ""))
    if not visit.may("operator"):
        return "needs the operator role"
    if op == "cancel" and state not in ACTIVE:
        return f"the run has ended ({state})"
    if op in ("pause", "resume") and run.get("kind") != "workflow":
        return "only a workflow run can be paused"
    if op == "pause" and state not in ("running", "waiting"):
        return "paused already" if state == "paused" else f"the run has ended ({state})"
    if op == "resume" and state != "paused":
        return "the run is not paused"
    if op == "retry" and (run.get("kind") != "workflow" or state not in RETRYABLE):
        return "only a failed, cancelled, timed-out or abandoned workflow run can be retried"
    return ""


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    state = q.get("state", "all")
    kind = q.get("kind", "")
    return {
        "state": state if state in STATES else "all",
        "kind": kind if kind in KINDS else "",
        "name": q.get("name", "").strip(),
        "pool": q.get("pool", "").strip(),
    }


@router.get("/runs", include_in_schema=False)
async def run_list(request: Request, visit: web.Viewing) -> Response:
    filters = _filters(request)
    raw = request.query_params.get("offset", "0")
    offset = int(raw) if raw.isdigit() else 0
    params = {k: v for k, v in filters.items() if v} | {"limit": PAGE, "offset": offset}
    answer = await visit.api.maybe("/runs", params)
    runs = answer.body.get("runs", []) if answer.ok else []
    total = answer.body.get("total", len(runs)) if answer.ok else 0
    next_query = None
    if answer.ok and total > offset + PAGE:
        next_query = urlencode({**{k: v for k, v in filters.items() if v}, "offset": offset + PAGE})
    context = {
        "title": "Runs",
        "filters": filters,
        "states": STATES,
        "kinds": KINDS,
        "runs": runs,
        "total": total,
        "answer": answer,
        "next_query": next_query,
    }
    return web.render(request, "runs.html", "runs", context, visit=visit)


async def _page(
    request: Request,
    visit: web.Visit,
    run_id: str,
    *,
    message: str = "",
    ok: bool = True,
    status: int = 200,
    retry: str = "",
) -> Response:
    run = await visit.api.get(f"/runs/{quote(run_id, safe='')}")
    trigger = web.as_dict(run.get("trigger"))
    context = {
        "title": f"Run {run.get('name') or run_id}",
        "run": run,
        "event": web.as_dict(web.as_dict(trigger.get("event")).get("event")),
        "request_event": web.as_dict(web.as_dict(trigger.get("request")).get("event")),
        "why": {op: why_not(visit, run, op) for op in OPS},
        "message": message,
        "ok": ok,
        "retry": retry,
    }
    return web.render(request, "run.html", "runs", context, visit=visit, status=status)


@router.get("/runs/{run_id}", include_in_schema=False)
async def run_page(request: Request, run_id: str, visit: web.Viewing) -> Response:
    return await _page(request, visit, run_id)


@router.post("/runs/{run_id}/{op}", include_in_schema=False)
async def run_action(request: Request, run_id: str, op: str, visit: web.Acting) -> Response:
    if op not in OPS:
        return await _page(request, visit, run_id, message=f"unknown action {op!r}", ok=False, status=400)
    comment = web.form_of(request).get("comment", "").strip() or None
    body = None if op == "retry" else {"comment": comment}
    answer = await visit.api.call("POST", f"/runs/{quote(run_id, safe='')}/{op}", json=body)
    if not answer.ok:
        status = answer.status if answer.status in (400, 403, 404, 409) else 502
        return await _page(request, visit, run_id, message=answer.message, ok=False, status=status)
    if op == "retry":  # the new run is recorded once an executor starts it: link it, do not wait
        new = str(answer.body.get("run_id", ""))
        return await _page(request, visit, run_id, message="retry requested", retry=new)
    done = {"cancel": "cancel requested", "pause": "pause requested", "resume": "resume requested"}[op]
    return await _page(request, visit, run_id, message=f"{done}; the executor applies it shortly (refresh)")
