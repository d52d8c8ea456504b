"""``whale run console``: the web console, server-rendered pages over the event center's API.

Built by :func:`create_app` from :class:`~whale_console.settings.Settings`; ``transport`` lets unit
tests put the event center's app (or a fake) behind the console's HTTP client.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
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
from whale.eventloop import uvicorn_options
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

    checks = {"event-center": functools.partial(api_answers, client)}
    install_health(app, process_registry(metrics.CONSOLE), checks)
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
    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    app.add_exception_handler(ApiUnreachable, api_unreachable)
    app.add_exception_handler(ApiRefused, api_refused)
    app.middleware("http")(security_headers)
    return app


async def api_answers(client: httpx.AsyncClient) -> bool:
    """The event center's ``/healthz`` answers 200 (the console's readiness check)."""
    try:
        return (await client.get("/healthz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Every answer carries :data:`SECURITY_HEADERS` (unless it set its own)."""
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def not_signed_in(request: Request, _: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return web.redirect(request, f"/login?next={quote(target, safe='')}")


async def csrf_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRejected)
    return web.render(request, "error.html", "error", {"title": "Form refused", "error": exc}, status=403)


async def api_unreachable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiUnreachable)
    context = {"title": "The event center did not answer", "error": exc}
    return web.render(request, "error.html", "error", context, status=502)


async def api_refused(request: Request, exc: Exception) -> Response:
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
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            **uvicorn_options(settings.whale.event_loop, settings.whale.http_parser),
        )
    )
    log.info("console_listening", url=f"http://{settings.host}:{settings.port}", api=settings.api_url)
    server.run()
    return 0
