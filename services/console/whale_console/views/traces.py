"""Trace: one chain (correlation id) in causal order, drawn as a graph with timings and failures."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import graph, web

router = APIRouter()


@router.get("/traces", include_in_schema=False)
async def trace_form(request: Request, visit: web.Viewing) -> Response:
    wanted = request.query_params.get("id", "").strip()
    if wanted:
        return web.redirect(request, f"/traces/{quote(wanted, safe='')}")
    recent = await visit.api.maybe("/events", {"type": "whale.workflow.completed", "size": 10})
    chains = [
        f["event"]
        for f in (recent.body.get("events", []) if recent.ok else [])
        if isinstance(f.get("event"), dict)
    ]
    return web.render(request, "traces.html", "traces", {"title": "Trace", "chains": chains}, visit=visit)


@router.get("/traces/{correlation_id}", include_in_schema=False)
async def trace_page(request: Request, correlation_id: str, visit: web.Viewing) -> Response:
    answer = await visit.api.maybe(f"/traces/{quote(correlation_id, safe='')}")
    steps = answer.body.get("events", []) if answer.ok else []
    hops, width, height = graph.layout(steps)
    context = {
        "title": f"Trace {correlation_id}",
        "correlation_id": correlation_id,
        "answer": answer,
        "hops": hops,
        "width": width,
        "height": height,
        "node_width": graph.WIDTH,
        "node_height": graph.HEIGHT,
        "failures": sum(1 for h in hops if h.failed),
    }
    status = 200 if answer.ok else (404 if answer.status == 404 else 200)
    return web.render(request, "trace.html", "traces", context, visit=visit, status=status)
