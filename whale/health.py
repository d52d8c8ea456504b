"""A tiny ``/metrics`` + ``/healthz`` HTTP server for services without an HTTP server of their own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Check = Callable[[], Awaitable[bool]]


async def _respond(writer: asyncio.StreamWriter, status: str, body: bytes, content_type: str) -> None:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()


async def serve_health(host: str, port: int, ready: Check | None = None) -> asyncio.Server:
    """Serve ``/healthz`` (process alive), ``/readyz`` (``ready()`` true) and ``/metrics``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
        except (TimeoutError, ConnectionError):
            writer.close()
            return
        parts = line.decode("latin-1").split()
        path = parts[1] if len(parts) > 1 else "/"
        if path == "/metrics":
            await _respond(writer, "200 OK", generate_latest(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            await _respond(writer, "200 OK", b'{"status":"ok"}', "application/json")
        elif path == "/readyz":
            ok = True if ready is None else await ready()
            body = json.dumps({"status": "ready" if ok else "not ready"}).encode()
            await _respond(writer, "200 OK" if ok else "503 Service Unavailable", body, "application/json")
        else:
            await _respond(writer, "404 Not Found", b'{"error":"not found"}', "application/json")

    return await asyncio.start_server(handle, host, port)
