"""``whale run console``: the web console, server-rendered pages over the event center's API.

Built by :func:`create_app` from :class:`~whale_console.settings.Settings`; ``transport`` lets unit
tests put the event center's app (or a fake) behind the console's HTTP client.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from whale import topics
from whale.compacted import CompactedView
from whale.logging import configure_logging
from whale.metrics import process_registry
from whale.web.health import install_health
from whale_console import metrics, web
from whale_console.errors import ApiRefused, ApiUnreachable, CsrfRejected, NotSignedIn
from whale_console.session import COOKIE, Sealer
from whale_console.settings import Settings
from whale_console.views import (
    approvals,
    auth,
    browse,
    deadletters,
    events,
    overview,
    replay,
    rule_backtest,
    rules,
    runs,
    todo_run,
    todos,
    traces,
)

log = structlog.get_logger(__name__)
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    # htmx and the console's own files only; no inline script, no framing, no third party
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    catalog: browse.CatalogView | None = None,
) -> FastAPI:
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    if secret is None:
        secret = secrets.token_urlsafe(32)
        log.warning(
            "no_session_secret",
            message="WHALE_CONSOLE_SESSION_SECRET unset: a random key, sign-ins end when the console restarts",
        )
    client = httpx.AsyncClient(
        base_url=settings.api_url.rstrip("/"), timeout=settings.api_timeout, transport=transport
    )

    catalog_view = catalog if catalog is not None else CompactedView(settings.whale, topics.CATALOG)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.dev_mode:
            log.warning(
                "DEV_MODE", service="console", message="no sign-in: every visitor is the API's dev caller"
            )
        try:
            yield
        finally:
            await client.aclose()
            if isinstance(catalog_view, CompactedView):
                await catalog_view.stop()

    app = FastAPI(title="Whale console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.sealer = Sealer(secret)
    app.state.client = client
    app.state.templates = web.templates()
    app.state.catalogue = browse.Catalogue(catalog_view)

    async def api_health() -> bool:
        try:
            return (await client.get("/healthz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    install_health(app, process_registry(metrics.CONSOLE), {"event-center": api_health})
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (
        auth,
        todo_run,  # before todos: its POST /todos/{id}/run is not one of their /todos/{id}/{op}
        todos,
        approvals,
        runs,
        replay,
        events,
        traces,
        rule_backtest,
        rules,
        deadletters,
        browse,
        overview,
    ):
        app.include_router(module.router)
    _install_handlers(app)

    @app.middleware("http")
    async def headers(request: Request, call_next: object) -> Response:
        response: Response = await call_next(request)  # type: ignore[operator]
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return web.redirect(request, f"/login?next={quote(target, safe='')}")

    @app.exception_handler(CsrfRejected)
    async def csrf(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CsrfRejected)
        return web.render(request, "error.html", "error", {"title": "Form refused", "error": exc}, status=403)

    @app.exception_handler(ApiUnreachable)
    async def unreachable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiUnreachable)
        context = {"title": "The event center did not answer", "error": exc}
        return web.render(request, "error.html", "error", context, status=502)

    @app.exception_handler(ApiRefused)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiRefused)
        if exc.api_status == 401:  # the credential expired or was revoked: sign in again
            response = web.redirect(request, "/login?expired=1")
            response.delete_cookie(COOKIE, path="/")
            return response
        status = exc.api_status if exc.api_status in (400, 403, 404, 409, 412) else 502
        context = {"title": f"The event center refused ({exc.api_status})", "error": exc}
        return web.render(request, "error.html", "error", context, status=status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whale run console", description="Whale web console")
    parser.add_argument("--host", help="listen address (default WHALE_CONSOLE_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default WHALE_CONSOLE_PORT)")
    args = parser.parse_args(argv or [])
    settings = Settings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.whale, service="console")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    )
    log.info("console_listening", url=f"http://{settings.host}:{settings.port}", api=settings.api_url)
    server.run()
    return 0
