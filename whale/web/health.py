"""The one set of health and metrics routes: ``/healthz``, ``/readyz``, ``/metrics``.

* ``/healthz``: the process answers (200 ``{"status": "ok"}``), nothing else is checked;
* ``/readyz``: every check of a :class:`Readiness` passes: 200 ``{"status": "ready", "checks"}``,
  else 503 ``{"status": "not ready", "checks", "waiting"}``;
* ``/metrics``: the process's own registry (:func:`whale.metrics.process_registry`).

FastAPI apps call :func:`install_health` (the module-level :data:`router`, reading the app's
:class:`Health` from ``app.state.health``); processes without an HTTP API serve the same three
routes with :func:`whale.health.serve_health`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
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


@dataclass(frozen=True, slots=True)
class Health:
    """What an app's health routes report: its metrics ``registry`` and its ``readiness`` checks."""

    registry: CollectorRegistry
    readiness: Readiness


def get_health(request: Request) -> Health:
    """The app's :class:`Health` (set by :func:`install_health`)."""
    health: Health = request.app.state.health
    return health


router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Every readiness check passes (503 names what is waited for)")
async def readyz(health: Annotated[Health, Depends(get_health)]) -> JSONResponse:
    status, body = await health.readiness.answer()
    return JSONResponse(body, status_code=status)


@router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
async def metrics(health: Annotated[Health, Depends(get_health)]) -> Response:
    return Response(metrics_payload(health.registry), media_type=CONTENT_TYPE_LATEST)


def install_health(
    app: FastAPI, registry: CollectorRegistry, checks: Readiness | Mapping[str, Check] | None = None
) -> None:
    """``/healthz``, ``/readyz`` (``checks``) and ``/metrics`` (``registry``) on ``app``."""
    readiness = checks if isinstance(checks, Readiness) else Readiness(checks)
    app.state.health = Health(registry, readiness)
    app.include_router(router)
