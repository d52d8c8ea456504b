"""``whale run adapters``: the Alertmanager and generic webhooks over HTTP, and the pollers.

``POST /alertmanager`` (bearer token ``WHALE_ADAPTERS_ALERTMANAGER_TOKEN`` unless ``WHALE_DEV_MODE``),
``POST /webhooks/<name>`` (HMAC), ``GET /healthz``, ``/readyz``, ``/metrics``. A 202 means every event
of the request was validated and acknowledged by Kafka on ``whale.ingest``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from whale import runtime, topics
from whale.allow import AllowHeader
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.errors import DeliveryError, MessageTooLarge, WhaleError
from whale.eventloop import uvicorn_options
from whale.logging import configure_logging
from whale.producer import EventProducer
from whale.redaction import Redactor
from whale.web.errors import install_error_handlers
from whale.web.health import install_health
from whale_adapters import metrics
from whale_adapters.alertmanager import ADAPTER, observe
from whale_adapters.config import AdaptersConfig, load_adapters
from whale_adapters.errors import (
    BodyError,
    BodyTooLarge,
    NoSuchWebhook,
    PayloadError,
    SignatureError,
    TokenRefused,
)
from whale_adapters.ingest import IngestWriter
from whale_adapters.lifecycle import AlertBook, Step
from whale_adapters.poller import Poller
from whale_adapters.settings import Settings
from whale_adapters.validation import EventValidator, parse_body
from whale_adapters.webhook import Webhook

log = structlog.get_logger(__name__)


@dataclass
class Components:
    """What the HTTP app needs, built by :func:`serve` (or by a test)."""

    writer: IngestWriter
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    alerts: AlertBook | None = None  # open alert episodes (from whale.adapters.state)


ALERT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "fingerprint"],
    "properties": {
        "status": {"enum": ["firing", "resolved"]},
        "fingerprint": {"type": "string", "minLength": 1},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string"},
        "generatorURL": {"type": "string"},
    },
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    202: {"description": "every event acknowledged by Kafka (whale.ingest)"},
    400: {"description": "the body is not JSON, nested deeper than 64 levels or not valid Unicode"},
    401: {"description": "missing or wrong credentials or signature"},
    413: {"description": "the body, or an event, is too large (Kafka's limit included)"},
    422: {"description": "the payload cannot become valid events (problems name each field)"},
    503: {"description": "Kafka did not acknowledge; nothing is accepted"},
}
ALERTMANAGER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "an Alertmanager webhook notification (payload version 4)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["version", "alerts"],
                    "properties": {
                        "version": {"const": "4"},
                        "status": {"type": "string"},
                        "receiver": {"type": "string"},
                        "externalURL": {"type": "string"},
                        "alerts": {"type": "array", "items": ALERT_SCHEMA},
                    },
                }
            }
        },
    }
}
WEBHOOK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the JSON the webhook's mapping reads (HMAC-signed: X-Whale-Signature or the configured header)",
        "content": {"application/json": {"schema": {"type": ["object", "array"]}}},
    }
}


@dataclass
class Front:
    """What the adapters' routes use: the settings, the components, the Alertmanager token and alerts."""

    settings: Settings
    parts: Components
    token: str | None
    alerts: AlertBook

    async def publish(self, adapter: str, events: list[CloudEvent]) -> JSONResponse:
        try:
            for event in events:  # all or nothing: no event of a request is sent if one is invalid
                self.parts.writer.validator.validate(event)
            await asyncio.gather(*(self.parts.writer.publish(e, adapter=adapter) for e in events))
        except PayloadError:
            metrics.REQUESTS.labels(adapter=adapter, outcome="invalid").inc()
            raise
        except MessageTooLarge:
            metrics.REQUESTS.labels(adapter=adapter, outcome="too_large").inc()
            raise
        except DeliveryError as exc:
            metrics.REQUESTS.labels(adapter=adapter, outcome="unavailable").inc()
            log.error("ingest_unavailable", adapter=adapter, error=exc.message)
            raise DeliveryError(f"events not stored: {exc.message}", retryable=exc.retryable) from None
        metrics.REQUESTS.labels(adapter=adapter, outcome="accepted").inc()
        return JSONResponse({"accepted": len(events), "ids": [e.id for e in events]}, status_code=202)

    async def record(self, book: AlertBook, adapter: str, steps: list[tuple[str, Step]]) -> None:
        try:
            for identity, step in steps:
                await book.record(self.parts.writer.producer, identity, step)
        except DeliveryError as exc:  # events are stored; the next change may read as a new firing
            log.error("alert_state_not_saved", adapter=adapter, error=exc.message)

    async def body_of(self, request: Request) -> bytes:
        body = await request.body()
        if len(body) > self.settings.max_body:
            raise BodyTooLarge(f"body larger than {self.settings.max_body} bytes", field="body")
        return body


def get_front(request: Request) -> Front:
    """The app's :class:`Front` (set by :func:`build_app`)."""
    front: Front = request.app.state.front
    return front


router = APIRouter()


@router.post("/alertmanager", openapi_extra=ALERTMANAGER_OPENAPI, responses=ANSWERS)
async def alertmanager(request: Request, front: Annotated[Front, Depends(get_front)]) -> Response:
    settings = front.settings
    if not settings.dev_mode:
        given = request.headers.get("authorization", "")
        if front.token is None or not hmac.compare_digest(given.encode(), f"Bearer {front.token}".encode()):
            metrics.REQUESTS.labels(adapter="alertmanager", outcome="refused").inc()
            raise TokenRefused("missing or wrong bearer token (set WHALE_ADAPTERS_ALERTMANAGER_TOKEN)")
    body = await front.body_of(request)
    try:
        doc = parse_body(body, "alertmanager")
    except BodyError:
        metrics.REQUESTS.labels(adapter="alertmanager", outcome="invalid").inc()
        raise
    try:
        observed = observe(doc, source=settings.alertmanager_source, book=front.alerts)
    except PayloadError:
        metrics.REQUESTS.labels(adapter="alertmanager", outcome="invalid").inc()
        raise
    response = await front.publish("alertmanager", [a.event for a in observed])
    if response.status_code == 202:  # the episodes move on only once their events are durable
        await front.record(front.alerts, "alertmanager", [(a.identity, a.step) for a in observed])
    return response


@router.post(
    "/webhooks/{name}",
    openapi_extra=WEBHOOK_OPENAPI,
    responses={**ANSWERS, 404: {"description": "no such webhook"}},
)
async def webhook(name: str, request: Request, front: Annotated[Front, Depends(get_front)]) -> Response:
    hook = front.parts.webhooks.get(name)
    if hook is None:
        raise NoSuchWebhook(f"no webhook named {name!r}", field="name")
    body = await front.body_of(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    adapter = f"webhook:{name}"
    try:
        hook.verify(body, headers)
    except SignatureError as exc:
        metrics.REQUESTS.labels(adapter=adapter, outcome="refused").inc()
        log.warning("webhook_signature_refused", webhook=name, reason=exc.message)
        raise
    try:
        event, identity, step = hook.observe(body, headers)
    except PayloadError:
        metrics.REQUESTS.labels(adapter=adapter, outcome="invalid").inc()
        raise
    response = await front.publish(adapter, [event])
    if step is not None and response.status_code == 202:
        await front.record(hook.book, adapter, [(identity, step)])
    return response


def build_app(settings: Settings, parts: Components) -> FastAPI:
    app = FastAPI(title="Whale adapters", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    token = settings.alertmanager_token.get_secret_value() if settings.alertmanager_token else None
    alerts = parts.alerts or AlertBook(ADAPTER, settings.alertmanager_source)
    app.state.front = Front(settings, parts, token, alerts)
    app.include_router(router)
    checks = {"producer": lambda: not parts.writer.producer.saturated}
    install_health(app, metrics.registry(), checks)
    app.add_middleware(AllowHeader, routes=app.router.routes)
    return app


async def serve(settings: Settings, stop: asyncio.Event, config: AdaptersConfig) -> None:
    """Run the HTTP server and the pollers until ``stop`` is set."""
    schemas = await _follow(settings, topics.SCHEMAS, stop) if settings.validate_schemas else None
    state = await _follow(settings, topics.ADAPTER_STATE, stop)
    if state is None:
        return
    if settings.dev_mode:
        log.warning("dev_mode", message="Alertmanager calls are accepted without a token")
    producer = EventProducer(settings.whale, client_id="whale-adapters")
    writer = IngestWriter(producer, EventValidator(schemas), redactor=Redactor.from_settings(settings.whale))
    parts = Components(
        writer,
        {
            w.name: Webhook(w, AlertBook(f"webhook:{w.name}", w.source, state, id_prefix="wh-"))
            for w in config.webhooks
        },
        AlertBook(ADAPTER, settings.alertmanager_source, state),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(settings, parts),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            **uvicorn_options(settings.whale.event_loop, settings.whale.http_parser),
        )
    )
    async with httpx.AsyncClient() as client:
        pollers = [Poller(p, writer, state, client) for p in config.pollers]
        tasks = [asyncio.create_task(p.run(stop), name=f"poller-{p.name}") for p in pollers]
        http = asyncio.create_task(server.serve(), name="http")
        log.info(
            "adapters_started",
            host=settings.host,
            port=settings.port,
            webhooks=sorted(parts.webhooks),
            pollers=[p.name for p in pollers],
        )
        await stop.wait()
        server.should_exit = True
        await asyncio.gather(http, *tasks, return_exceptions=True)
    await asyncio.to_thread(producer.close)
    await state.stop()
    if schemas is not None:
        await schemas.stop()


async def _follow(settings: Settings, topic: str, stop: asyncio.Event) -> CompactedView | None:
    """A caught-up view of ``topic``; retried while Kafka is not reachable (None when stopped)."""
    while not stop.is_set():
        view = CompactedView(settings.whale, topic)
        try:
            await view.start()
            return view
        except WhaleError as exc:
            await view.stop()
            log.error("kafka_not_ready", topic=topic, error=exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="whale run adapters")
    parser.add_argument("--config", help="YAML with webhooks and pollers (or WHALE_ADAPTERS_CONFIG)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.config:
        settings = settings.model_copy(update={"config": Path(args.config)})
    configure_logging(settings.whale, service="adapters")
    try:
        config = load_adapters(settings.config)
        for hook in config.webhooks:
            hook.secret()  # fail at start-up, not on the first call
        for poller in config.pollers:
            poller.request_headers()
    except WhaleError as exc:
        log.error("adapters_config_invalid", error=exc.message)
        return 2
    return runtime.run(lambda stop: serve(settings, stop, config), settings.whale.event_loop)
