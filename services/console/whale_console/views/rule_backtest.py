"""A rule's backtest: how many stored events it would have fired on over a window (1h, 24h, 7d),
per time bucket as a small bar chart, and what its throttle would have suppressed
(:mod:`whale_console.backtest`). Read-only: any signed-in person may run it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import backtest, web
from whale_console.views.rules import current_book

router = APIRouter()


@router.get("/rules/{rule_id}/backtest", include_in_schema=False)
async def backtest_page(request: Request, rule_id: str, visit: web.Viewing) -> Response:
    since = request.query_params.get("since", "24h").strip() or "24h"
    found = await current_book(visit, request)
    entry = found.get(rule_id)
    if entry is None:
        await visit.api.get(f"/rules/{quote(rule_id, safe='')}")  # the API's own 404
        raise AssertionError("unreachable")  # pragma: no cover
    context: dict[str, Any] = {
        "title": f"Backtest {rule_id}",
        "rule_id": rule_id,
        "since": since,
        "windows": backtest.WINDOWS,
        "cap": backtest.CAP,
        "result": None,
        "problem": "",
    }
    status = 200
    try:
        length = backtest.window(since)
    except ValueError as exc:
        context["problem"], status = f"since: {exc}", 400
    else:
        context["result"] = await backtest.backtest(visit.api, entry.document, length, backtest.CAP)
    if web.is_htmx(request):
        return web.render(request, "_backtest.html", "rules", context, visit=visit)
    return web.render(request, "backtest.html", "rules", context, visit=visit, status=status)
