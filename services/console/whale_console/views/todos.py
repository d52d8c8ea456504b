"""The to-do panel: the queue with filters, claim / unclaim / comment / resolve, one item's page.

Everything goes through the event center's ``/todos`` API as the signed-in person; only operators
see enabled buttons (a viewer sees them disabled, with why). Actions answer the item's card again
(htmx swaps it in place), or redirect back to the list without JavaScript.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import web
from whale_console.views import todo_run

router = APIRouter()
STATUSES = ("active", "open", "claimed", "resolved", "all")
OPS = ("claim", "unclaim", "comment", "resolve")
PAGE = 50


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    status = q.get("status", "active")
    return {
        "status": status if status in STATUSES else "active",
        "type": q.get("type", "").strip(),
        "assignee": q.get("assignee", "").strip(),
        "text": q.get("text", "").strip(),
    }


def _keep(item: dict[str, Any], filters: dict[str, str], me: str) -> bool:
    assignee = filters["assignee"]
    if assignee == "me" and item.get("claimed_by") != me:
        return False
    if assignee == "nobody" and item.get("claimed_by"):
        return False
    if assignee not in ("", "me", "nobody") and item.get("claimed_by") != assignee:
        return False
    text = filters["text"].lower()
    return not text or text in f"{item.get('title', '')} {item.get('subject', '')}".lower()


@router.get("/todos", include_in_schema=False)
async def todo_list(request: Request, visit: web.Viewing) -> Response:
    filters = _filters(request)
    raw_offset = request.query_params.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    params: dict[str, Any] = {"status": filters["status"], "limit": 1000, "offset": 0}
    if filters["type"]:
        params["type"] = filters["type"]
    body = await visit.api.get("/todos", params)
    items = [i for i in body.get("todos", []) if _keep(i, filters, visit.session.name)]
    context = {
        "title": "To-dos",
        "filters": filters,
        "statuses": STATUSES,
        "items": items[offset : offset + PAGE],
        "total": len(items),
        "offset": offset,
        "page_size": PAGE,
        "types": sorted({str(i.get("type")) for i in body.get("todos", []) if i.get("type")}),
    }
    return web.render(request, "todos.html", "todos", context, visit=visit)


@router.get("/todos/{todo_id}", include_in_schema=False)
async def todo_page(request: Request, todo_id: str, visit: web.Viewing) -> Response:
    item = await visit.api.get(f"/todos/{quote(todo_id, safe='')}")
    offered = await todo_run.offer(request, visit, item, request.query_params.get("target", ""))
    context = {"title": item.get("title"), "item": item, **offered}
    return web.render(request, "todo.html", "todos", context, visit=visit)


@router.post("/todos/{todo_id}/{op}", include_in_schema=False)
async def todo_action(request: Request, todo_id: str, op: str, visit: web.Acting) -> Response:
    form = web.form_of(request)
    message, ok, item = "", True, None
    if op not in OPS:
        message, ok = f"unknown action {op!r}", False
    else:
        comment = form.get("comment", "").strip() or None
        if op == "comment" and not comment:
            message, ok = "comment: write something to add", False
        else:
            answer = await visit.api.call(
                "POST",
                f"/todos/{quote(todo_id, safe='')}/{op}",
                json={"by": visit.session.name, "comment": comment},
            )
            ok = answer.ok
            if answer.status == 202:
                message = "sent; the to-do stage has not applied it yet (refresh in a moment)"
            elif answer.ok:
                item, message = answer.body, f"{op}: done"
            else:
                message = answer.message
    if not web.is_htmx(request):
        back = form.get("back") or "/todos"
        return web.redirect(request, back if back.startswith("/") and not back.startswith("//") else "/todos")
    if item is None:
        current = await visit.api.maybe(f"/todos/{quote(todo_id, safe='')}")
        item = current.body if current.ok else {"id": todo_id, "title": todo_id}
    context = {"item": item, "message": message, "ok": ok}
    return web.render(request, "_todo_card.html", "todos", context, visit=visit, status=200)
