"""``/healthz``, ``/readyz`` and ``/metrics`` for processes without an HTTP API of their own.

The same routes as every FastAPI app (:mod:`whale.web.health`), in a small app served by uvicorn
on the process's loop. The port is bound and listening before this returns, so a busy port raises ``OSError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Mapping

import structlog
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from whale.web.errors import install_error_handlers
from whale.web.health import Check, install_health

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the process's own runtime handles signals
        yield


class HealthServer:
    """A running health server: :meth:`close` asks it to stop, :meth:`wait_closed` waits for that."""

    def __init__(self, server: _Server, task: asyncio.Task[None]) -> None:
        self._server = server
        self.task = task

    def close(self) -> None:
        self._server.should_exit = True

    async def wait_closed(self) -> None:
        with contextlib.suppress(Exception):
            await self.task


async def serve_health(
    host: str, port: int, checks: Mapping[str, Check] | None = None, *, registry: CollectorRegistry
) -> HealthServer:
    """Serve ``/healthz`` (alive), ``/readyz`` (every check passes) and ``/metrics`` (``registry``)."""
    app = FastAPI(title="Whale health", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    install_health(app, registry, checks)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until uvicorn serves them
    except OSError:
        sock.close()
        raise
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"health-{port}")
    return HealthServer(server, task)


async def start_health(
    host: str, port: int, registry: CollectorRegistry, checks: Mapping[str, Check] | None = None
) -> HealthServer | None:
    """:func:`serve_health` on ``port``; a busy port is logged, not fatal (the work matters more)."""
    try:
        return await serve_health(host, port, checks, registry=registry)
    except OSError as exc:
        log.error("health_port_unavailable", host=host, port=port, error=str(exc))
        return None
