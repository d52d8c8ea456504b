"""Browse: the executors' catalogue, event schemas and push subscriptions (dead letters have
their own page, :mod:`whale_console.views.deadletters`).

Subscriptions can be paused and resumed by authors. The catalogue has no API route, so the console follows the compacted ``whale.catalog`` topic itself
(read-only), the one place it reads Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale.errors import WhaleError
from whale_console import web

router = APIRouter()


class CatalogView(Protocol):
    async def start(self, timeout: float = 60.0) -> None: ...

    def items(self) -> dict[str, Any]: ...


class Catalogue:
    """The ``whale.catalog`` view, started on first use (a page never waits more than ``timeout``)."""

    def __init__(self, view: CatalogView) -> None:
        self.view = view
        self._started = False
        self._lock = asyncio.Lock()

    async def entries(self, timeout: float = 20.0) -> dict[str, Any]:
        async with self._lock:
            if not self._started:
                await self.view.start(timeout=timeout)
                self._started = True
        return {key: getattr(record, "data", record) for key, record in sorted(self.view.items().items())}


@router.get("/catalog", include_in_schema=False)
async def catalogue(request: Request, visit: web.Viewing) -> Response:
    book: Catalogue = web.state(request).catalogue
    try:
        entries, error = await book.entries(), ""
    except WhaleError as exc:  # Kafka unreachable: the page says so, the rest of the console works
        entries, error = {}, f"the catalogue topic could not be read: {type(exc).__name__}: {exc}"
    context = {"title": "Catalogue", "entries": entries, "error": error}
    return web.render(request, "catalog.html", "catalog", context, visit=visit)


@router.get("/schemas", include_in_schema=False)
async def schemas(request: Request, visit: web.Viewing) -> Response:
    body = await visit.api.get("/schemas")
    context = {"title": "Schemas", "types": body.get("types", [])}
    return web.render(request, "schemas.html", "schemas", context, visit=visit)


@router.get("/schemas/{type_name}", include_in_schema=False)
async def schema(request: Request, type_name: str, visit: web.Viewing) -> Response:
    body = await visit.api.get(f"/schemas/{quote(type_name, safe='')}")
    context = {"title": f"Schema {type_name}", "type_name": type_name, "versions": body.get("versions", [])}
    return web.render(request, "schema.html", "schemas", context, visit=visit)


@router.get("/subscriptions", include_in_schema=False)
async def subscriptions(request: Request, visit: web.Viewing) -> Response:
    body = await visit.api.get("/subscriptions")
    context = {"title": "Subscriptions", "subscriptions": body.get("subscriptions", []), "message": ""}
    return web.render(request, "subscriptions.html", "subscriptions", context, visit=visit)


@router.post("/subscriptions/{name}/{op}", include_in_schema=False)
async def pause_resume(request: Request, name: str, op: str, visit: web.Acting) -> Response:
    message = ""
    if op not in ("pause", "resume"):
        message = f"unknown action {op!r}"
    else:
        answer = await visit.api.call("POST", f"/subscriptions/{quote(name, safe='')}/{op}")
        message = f"{name}: {op}d" if answer.ok else answer.message
    body = await visit.api.get("/subscriptions")
    context: dict[str, Any] = {
        "title": "Subscriptions",
        "subscriptions": body.get("subscriptions", []),
        "message": message,
    }
    return web.render(request, "subscriptions.html", "subscriptions", context, visit=visit)
