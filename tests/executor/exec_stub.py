"""A local HTTP server on 127.0.0.1 standing in for a SaaS API and for a WeCom / Slack robot."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Route:
    responses: list[tuple[int, Any]]
    delay: float = 0.0
    calls: int = 0


@dataclass
class Stub:
    """Scripted answers per (method, path); the last scripted answer repeats."""

    server: ThreadingHTTPServer
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path: str, *responses: tuple[int, Any], delay: float = 0.0) -> None:
        self.routes[(method, path)] = Route(list(responses) or [(200, {})], delay)

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def start_stub() -> Stub:
    stub: Stub

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            stub.seen.append(
                Seen(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
            )
            route = stub.routes.get((self.command, parts.path))
            if route is None:
                status, answer = 404, {"error": "no such route"}
            else:
                status, answer = route.responses[min(route.calls, len(route.responses) - 1)]
                route.calls += 1
                if route.delay:
                    time.sleep(route.delay)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub = Stub(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return stub
