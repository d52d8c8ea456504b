"""WSGI middleware (Flask, Django, any WSGI app): ``app = WhaleWSGIMiddleware(app, config=...)``.

For a mapped route it buffers the request body (and hands the application a fresh stream), keeps a
copy of a 2xx response body while the server iterates it, and enqueues the call when the server
closes the response, that is after the response was sent. Call :meth:`WhaleWSGIMiddleware.close`
at shutdown to flush (the publisher also flushes at interpreter exit).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from whale_adapters.middleware.mapping import Capture
from whale_adapters.middleware.setup import PublishingMiddleware

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WhaleWSGIMiddleware(PublishingMiddleware[WSGIApp]):
    """Publishes a CloudEvent for each successful call of a mapped route."""

    start_publisher_at_once = True  # flushed by close(), or at interpreter exit

    def close(self) -> None:
        """Flush queued events (application shutdown)."""
        self.publisher.close()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = self._router.match(
            environ.get("REQUEST_METHOD", "GET").upper(), environ.get("PATH_INFO", "/")
        )
        if found is None:
            return self.app(environ, start_response)
        route, params = found
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        status_box = [0]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_box[0] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.app(environ, start)
        return _Tee(
            self, result, status_box, route, params, environ.get("QUERY_STRING", ""), body[: self._max_body]
        )


class _Tee:
    """Iterates the application's response for the server, copying it; publishes on close."""

    def __init__(
        self,
        owner: WhaleWSGIMiddleware,
        result: Iterable[bytes],
        status: list[int],
        route: int,
        params: dict[str, str],
        query: str,
        request: bytes,
    ) -> None:
        self._owner = owner
        self._result = result
        self._status = status
        self._route = route
        self._params = params
        self._query = query
        self._request = request
        self._copy = bytearray()

    def __iter__(self) -> Iterator[bytes]:
        limit = self._owner._max_body
        for chunk in self._result:
            if len(self._copy) < limit and 200 <= self._status[0] < 300:
                self._copy.extend(chunk[: limit - len(self._copy)])
            yield chunk

    def close(self) -> None:
        closer = getattr(self._result, "close", None)
        if closer is not None:
            closer()
        if 200 <= self._status[0] < 300:
            self._owner.publisher.offer(
                Capture(
                    self._route, self._params, self._query, self._request, bytes(self._copy), self._status[0]
                )
            )
