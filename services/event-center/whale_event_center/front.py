"""``POST /events`` answered ahead of the ASGI middleware stack (issue #19: for a single POST the
stack's eight layers and the response sent through each of them were about a quarter of its CPU).

:func:`install` wraps the app's middleware stack: a request for exactly ``POST /events`` is read,
handed to :meth:`Ingest.handle <whale_event_center.service.Ingest.handle>` and answered here; every
other request (other paths and methods, so the 405 with its ``Allow`` header, a root path, lifespan)
goes through the app as before. The FastAPI route stays declared, so ``/openapi.json`` is unchanged.

What the skipped layers did for this route is done here, with the same code: the request size limit
(:func:`read_body`), the one error body for an error raised while reading
(:func:`whale.web.errors.whale_error_response`) and for a crash (500 ``internal_error``, the
traceback logged: :func:`whale.web.errors.crash_response`). Authentication first, parsing, the schema
check, redaction, the 202 only after Kafka's acks=all and the request metrics are
:meth:`Ingest.handle`'s, as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from whale.errors import WhaleError
from whale.web.errors import crash_response, whale_error_response
from whale_event_center.errors import TooLarge
from whale_event_center.service import Ingest
from whale_event_center.settings import Settings

PATH = "/events"


async def read_body(declared: str | None, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The request body from ``stream``; 413 as soon as the declared length (``Content-Length``) or
    what arrived exceeds ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request is {declared} bytes, the limit is {limit}", field="")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request exceeds the limit of {limit} bytes", field="")
        chunks.append(chunk)
    return b"".join(chunks)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body as ASGI hands it over (what Starlette's ``Request.stream`` yields)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] == "http.request":
            body: bytes = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


class IngestFront:
    """The ASGI app in front of ``app``: ``POST /events`` itself, everything else passed on."""

    def __init__(self, app: ASGIApp, ingest: Ingest, settings: Settings) -> None:
        self.app = app
        self.ingest = ingest
        self.limit = settings.max_request_bytes
        self.retry_after = settings.retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        try:
            response = await self._answer(scope, receive)
        except WhaleError as exc:
            response = whale_error_response(exc, self.retry_after)
        except Exception:
            response = crash_response(scope)
        try:
            await response(scope, receive, send)
        except Exception:
            crash_response(scope)  # logged; the answer has begun, nothing else can be sent
            raise

    async def _answer(self, scope: Scope, receive: Receive) -> JSONResponse:
        # Starlette's Headers: items() keeps every pair (dict(): the last of a repeated name wins),
        # get() the first
        headers: dict[str, str] = {}
        content_type: str | None = None
        declared: str | None = None
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = value
            if content_type is None and raw_name == b"content-type":
                content_type = value
            elif declared is None and raw_name == b"content-length":
                declared = value
        body = await read_body(declared, _chunks(receive), self.limit)
        answer = await self.ingest.handle(content_type, headers, body)
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def install(app: FastAPI, ingest: Ingest, settings: Settings) -> None:
    """Put :class:`IngestFront` in front of ``app``'s middleware stack (built on the first request)."""
    build = app.build_middleware_stack

    def build_with_front() -> ASGIApp:
        return IngestFront(build(), ingest, settings)

    app.build_middleware_stack = build_with_front  # type: ignore[method-assign]
