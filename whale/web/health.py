"""The one set of health and metrics routes: ``/healthz``, ``/readyz``, ``/metrics``.

* ``/healthz``: the process answers (200 ``{"status": "ok"}``), nothing else is checked;
* ``/readyz``: every check of a :class:`Readiness` passes: 200 ``{"status": "ready", "checks"}``,
  else 503 ``{"status": "not ready", "checks", "waiting"}``;
* ``/metrics``: the process's own registry (:func:`whale.metrics.process_registry`).

FastAPI apps include :func:`health_router`; processes without an HTTP API serve the same three
routes with :func:`whale.health.serve_health`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = structlog.get_logger(__name__)

CheckResult = bool | Sequence[str]
Check = Callable[[], CheckResult | Awaitable[CheckResult]]
"""True when ready; or the list of what it still waits for (empty: ready). May be async."""


class Readiness:
    """Named checks, run together; a check that raises counts as not ready (and is logged)."""

    def __init__(self, checks: Mapping[str, Check] | None = None) -> None:
        self.checks = dict(checks or {})

    async def _run(self, name: str, check: Check) -> list[str]:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            log.warning("readiness_check_failed", check=name, error=f"{type(exc).__name__}: {exc}")
            return [name]
        if isinstance(result, bool):
            return [] if result else [name]
        return [str(item) for item in result]

    async def answer(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of ``/readyz``."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(n, self.checks[n]) for n in names))
        checks = {name: not waiting for name, waiting in zip(names, results, strict=True)}
        waiting = [item for items in results for item in items]
        if not waiting:
            return 200, {"status": "ready", "checks": checks}
        return 503, {"status": "not ready", "checks": checks, "waiting": waiting}


def metrics_payload(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


def health_router(
    registry: CollectorRegistry, checks: Readiness | Mapping[str, Check] | None = None
) -> APIRouter:
    """``/healthz``, ``/readyz`` (``checks``) and ``/metrics`` (``registry``) for a FastAPI app."""
    readiness = checks if isinstance(checks, Readiness) else Readiness(checks)
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Every readiness check passes (503 names what is waited for)")
    async def readyz() -> JSONResponse:
        status, body = await readiness.answer()
        return JSONResponse(body, status_code=status)

    @router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
    async def metrics() -> Response:
        return Response(metrics_payload(registry), media_type=CONTENT_TYPE_LATEST)

    return router
