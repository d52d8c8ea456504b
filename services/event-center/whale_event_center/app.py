"""``whale run event-center``: the HTTP front door (ingest, schema registry, search, trace, health).

Built by :func:`create_app` from :class:`~whale_event_center.settings.Settings` and
:class:`~whale_event_center.components.Components` (real Kafka/Elasticsearch in :func:`main`,
fakes in unit tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from whale import audit, authz, oidc
from whale.allow import AllowHeader
from whale.eventloop import uvicorn_options
from whale.logging import configure_logging
from whale.metrics import process_registry
from whale.tokens import ViewTokenBook
from whale.web.errors import install_error_handlers
from whale.web.health import install_health
from whale_event_center import (
    actions_api,
    api_schemas,
    api_search,
    approvals_api,
    components,
    dlq_api,
    front,
    metrics,
    replay_api,
    rules_api,
    runs_api,
    subscriptions_api,
    todo_api,
    tokens_api,
    whoami_api,
)
from whale_event_center.errors import EventCenterError
from whale_event_center.front import read_body
from whale_event_center.registry import SchemaRegistry
from whale_event_center.service import Ingest
from whale_event_center.settings import Settings

log = structlog.get_logger(__name__)

TEXT = "^[^\\u0000-\\u001f\\u007f]+$"  # no control characters
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A structured CloudEvent (attributes and extensions at top level)",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1, "pattern": TEXT},
        "source": {
            "type": "string",
            "minLength": 1,
            "format": "uri-reference",
            "pattern": "^([A-Za-z0-9\\-._~:/?#\\[\\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}|[^\\u0000-\\u007f])+$",
        },
        "type": {"type": "string", "minLength": 1, "pattern": TEXT},
        "datacontenttype": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][\\w.+-]*/[A-Za-z0-9][\\w.+-]*\\s*(;.*)?$",
        },
        "dataschema": {"type": "string", "format": "uri"},
        "subject": {"type": "string", "minLength": 1, "pattern": TEXT},
        "time": {
            "type": "string",
            "format": "date-time",
            "pattern": "^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$",
        },
        "data": {},
        "data_base64": {"type": "string", "contentEncoding": "base64"},
    },
    "propertyNames": {"pattern": "^([a-z0-9]+|data_base64)$"},
    "additionalProperties": {
        "anyOf": [
            {"type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f]*$"},
            {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
            {"type": "boolean"},
        ]
    },
}
POST_EVENTS_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A CloudEvent: structured, batch, or binary (ce-* headers, the body is the data)",
        "content": {
            "application/cloudevents+json": {"schema": EVENT_SCHEMA},
            "application/cloudevents-batch+json": {"schema": {"type": "array", "items": EVENT_SCHEMA}},
            # binary mode: the body is the data; the ce-specversion, ce-id, ce-source, ce-type headers
            # are required (a JSON body without them is 400)
            "application/json": {"schema": {}},
        },
    },
    "responses": {
        "202": {"description": "accepted: Kafka acknowledged every event"},
        "207": {"description": "batch: Kafka failed some valid events (status per event in results)"},
        "400": {
            "description": "invalid: problems lists each attribute or JSON pointer into data (a batch "
            "with an invalid event is refused whole: nothing is written)"
        },
        "401": {"description": "missing, unknown or malformed credentials, or a bad signature"},
        "403": {"description": "the token does not grant this source"},
        "413": {"description": "event or request too large"},
        "415": {"description": "unsupported content type"},
        "429": {"description": "too many events waiting for Kafka; see Retry-After"},
        "503": {"description": "Kafka did not acknowledge; nothing accepted; see Retry-After"},
    },
}


router = APIRouter()


@router.post(
    "/events",
    tags=["ingest"],
    summary="Publish CloudEvents",
    openapi_extra=POST_EVENTS_OPENAPI,
    status_code=202,
)
async def post_events(request: Request) -> JSONResponse:
    # Declared for the OpenAPI document; the requests themselves are answered by whale_event_center.front
    # ahead of the middleware stack (this route serves only those it passes on: under a root path).
    # The app's settings and Ingest (set by create_app) read here, not through Depends: FastAPI's
    # dependency solving was 8% of a single POST's CPU (authentication is Ingest.handle's first step)
    state = request.app.state
    settings: Settings = state.settings
    ingest: Ingest = state.ingest
    body = await read_body(
        request.headers.get("content-length"), request.stream(), settings.max_request_bytes
    )
    answer = await ingest.handle(request.headers.get("content-type"), dict(request.headers), body)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def create_app(settings: Settings, parts: components.Components) -> FastAPI:
    registry = SchemaRegistry(
        parts.schemas, parts.producer, base_url=settings.base_url(), timeout=settings.registry_timeout
    )
    ingest = Ingest(settings, parts.producer, registry, parts.tokens, ready=parts.views_ready.is_set)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.dev_mode:
            log.warning("dev_mode", message="authentication is OFF: events are accepted without credentials")
        elif parts.tokens is None:
            log.warning("no_tokens_file", message="no tokens file configured: every POST /events answers 503")
        starting = asyncio.create_task(_start(parts, registry, settings))
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await parts.close()

    app = FastAPI(
        title="Whale event center",
        version="1.0",
        description="CloudEvents ingest, schema registry, search and trace.",
        lifespan=lifespan,
    )

    install_error_handlers(app, retry_after=settings.retry_after)
    authenticator = authz.Authenticator(
        dev_mode=settings.dev_mode,
        tokens=ViewTokenBook(parts.people) if parts.people is not None else None,
        oidc=oidc.verifier(settings.auth),
    )
    authz.install(app, authenticator, service="event-center")
    ingest.people = authenticator

    async def schema_changed(identity: authz.Identity, type_name: str, before: Any, after: Any) -> None:
        await audit.record(parts.producer, identity, "schema", "registered", type_name, before, after)

    app.state.settings = settings
    app.state.ingest = ingest
    app.include_router(router)

    checks = {
        "kafka": parts.kafka_ready,
        "elasticsearch": parts.store.ping,
        "registry": parts.views_ready.is_set,
    }
    install_health(app, process_registry(metrics.FAMILIES), checks)

    async def events_of(type_: str) -> int:
        return int(await parts.store.count({"term": {"type": type_}}))

    api_schemas.install(app, registry, parts.views_ready.is_set, events_of, schema_changed)
    api_search.install(app, parts.store, settings.search_max_size)
    rules_api.install(
        app,
        parts.producer,
        parts.rules,
        parts.catalog,
        parts.schemas,
        store=parts.store,
        rules_dir=settings.whale.rules_dir,
    )
    todo_api.install(app, parts.producer, settings.whale, view=parts.todos, people=parts.people)
    if parts.subscriptions is not None:
        subscriptions_api.install(app, parts.producer, parts.subscriptions, push_hosts=settings.push_hosts)
    if parts.people is not None:
        tokens_api.install(app, parts.producer, parts.people)
    whoami_api.install(app)
    if parts.runs is not None:
        approvals_api.install(app, parts.producer, parts.runs)
        runs_api.install(app, parts.producer, parts.runs, parts.store)
    actions_api.install(app, parts.producer, parts.catalog, parts.store)
    topics_of = {"ingest_topic": settings.ingest_topic, "events_topic": settings.events_topic}
    dlq_api.install(app, parts.producer, parts.store, **topics_of)
    replay_api.install(app, parts.producer, parts.store, events_topic=settings.events_topic)
    authz.document(app)
    app.add_middleware(AllowHeader, routes=app.router.routes)
    front.install(app, ingest, settings)
    app.state.registry = registry
    app.state.components = parts
    return app


async def _start(parts: components.Components, registry: SchemaRegistry, settings: Settings) -> None:
    await parts.start_views()
    if settings.schemas_dir is not None:
        try:
            added = await registry.register_directory(settings.schemas_dir)
        except EventCenterError as exc:
            log.warning("bundled_schemas_failed", error=str(exc))
        else:
            log.info("registry_ready", types=len(registry.types()), registered=added)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whale run event-center", description="Whale event center (HTTP)")
    parser.add_argument("--host", help="listen address (default WHALE_EVENT_CENTER_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default WHALE_EVENT_CENTER_PORT)")
    args = parser.parse_args(argv or [])
    settings = Settings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.whale, service="event-center")
    app = create_app(settings, components.build(settings))
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
    log.info("event_center_listening", url=settings.base_url(), dev_mode=settings.dev_mode)
    server.run()
    return 0
