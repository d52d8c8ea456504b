"""ASGI middleware (FastAPI, Starlette): ``app.add_middleware(WhaleASGIMiddleware, config=...)``.

For a mapped route it keeps a copy of the request body and, when the response status is 2xx, of the
response body; after the last response chunk is sent it enqueues the call for the background
publisher (never delaying the response). The publisher starts with the application's lifespan (or
the first request) and is flushed when the lifespan shuts down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from whale_adapters.middleware.mapping import Capture
from whale_adapters.middleware.setup import PublishingMiddleware, make_publisher

__all__ = ["WhaleASGIMiddleware", "make_publisher"]  # make_publisher stays importable from here

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WhaleASGIMiddleware(PublishingMiddleware[ASGIApp]):
    """Publishes a CloudEvent for each successful call of a mapped route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self._router.match(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        request = bytearray()
        response = bytearray()
        status = 0
        limit = self._max_body

        async def receive_copy() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request) < limit:
                request.extend(message.get("body", b"")[: limit - len(request)])
            return message

        async def send_copy(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and 200 <= status < 300 and len(response) < limit:
                response.extend(message.get("body", b"")[: limit - len(response)])
            await send(message)
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and 200 <= status < 300
            ):
                await self.publisher.offer_async(
                    Capture(
                        route,
                        params,
                        scope.get("query_string", b"").decode("latin-1"),
                        bytes(request),
                        bytes(response),
                        status,
                    )
                )

        await self.app(scope, receive_copy, send_copy)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_hook() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.publisher.start()
            return message

        async def send_hook(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await asyncio.to_thread(self.publisher.close)
            await send(message)

        await self.app(scope, receive_hook, send_hook)
