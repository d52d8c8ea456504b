"""``whale run dispatcher``: follows ``whale.subscriptions`` and runs one delivery worker per
subscription; ``GET /status`` (per-subscription status; role viewer), ``/metrics``, ``/healthz`` and ``/readyz``
on port 8096. ``/healthz`` answers at once; ``/readyz`` once the subscriptions were read to their end
and every worker's consumer joined its group (or is paused).

Subscriptions are added, edited, paused/resumed and deleted by writing their records (``whale
subscriptions apply``, or the event center's API); every dispatcher replica sees changes live.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Annotated

import httpx
import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from whale import authz, oidc, runtime, topics
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.errors import WhaleError
from whale.eventloop import uvicorn_options
from whale.logging import configure_logging
from whale.producer import EventProducer
from whale.subscriptions import Subscription, from_record
from whale.tokens import ViewTokenBook
from whale.web.errors import install_error_handlers
from whale.web.health import install_health
from whale_dispatcher import metrics
from whale_dispatcher.settings import Settings
from whale_dispatcher.worker import Worker

log = structlog.get_logger(__name__)


class Dispatcher:
    """Keeps one running :class:`Worker` per subscription record."""

    def __init__(self, settings: Settings, producer: EventProducer, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._producer = producer
        self._client = client
        self.workers: dict[str, Worker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.invalid: dict[str, str] = {}
        self.caught_up = False  # the subscriptions view was read to its end and applied

    def apply(self, key: str, record: CloudEvent | None) -> None:
        """Reconcile one subscription record (None = deleted)."""
        if record is None:
            self._remove(key)
            return
        try:
            sub = from_record(record)
        except ValidationError as exc:
            self.invalid[key] = str(exc.errors()[0]["msg"])
            log.error("subscription_record_invalid", subscription=key, error=self.invalid[key])
            self._remove(key)
            return
        self.invalid.pop(key, None)
        worker = self.workers.get(key)
        if worker is not None and worker.sub.topics == sub.topics:
            worker.update(sub)
            log.info("subscription_updated", subscription=key, paused=sub.paused)
            return
        self._remove(key)
        self._start(sub)

    def _start(self, sub: Subscription) -> None:
        worker = Worker(
            self._settings.whale,
            sub,
            producer=self._producer,
            client=self._client,
            group_prefix=self._settings.group_prefix,
            max_batch=self._settings.max_batch,
        )
        self.workers[sub.id] = worker
        self._tasks[sub.id] = asyncio.create_task(self._guard(worker), name=f"subscription-{sub.id}")
        log.info("subscription_started", subscription=sub.id, endpoint=sub.endpoint, paused=sub.paused)

    async def _guard(self, worker: Worker) -> None:
        while True:
            try:
                await worker.run()
                return
            except Exception as exc:  # nothing crashes the service: log, wait, start again
                log.error(
                    "subscription_worker_failed",
                    subscription=worker.sub.id,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(2.0)

    def _remove(self, key: str) -> None:
        worker = self.workers.pop(key, None)
        self._tasks.pop(key, None)
        if worker is not None:
            worker.stop()
            log.info("subscription_removed", subscription=key)

    async def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def waiting(self) -> list[str]:
        """What readiness still waits for (empty: ready)."""
        if not self.caught_up:
            return ["subscriptions view"]
        return [
            f"subscription {key}"
            for key, worker in sorted(self.workers.items())
            if not worker.ready or self._tasks[key].done()
        ]

    def status(self) -> dict[str, object]:
        return {
            "subscriptions": [
                w.status.as_dict() for w in sorted(self.workers.values(), key=lambda w: w.sub.id)
            ],
            "invalid": self.invalid,
        }


def get_dispatcher(request: Request) -> Dispatcher:
    """The app's :class:`Dispatcher` (set by :func:`build_app`)."""
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


router = APIRouter()


@router.get("/status", dependencies=[authz.require(authz.Role.viewer)])
async def status(dispatcher: Annotated[Dispatcher, Depends(get_dispatcher)]) -> JSONResponse:
    return JSONResponse(dispatcher.status())


def build_app(dispatcher: Dispatcher, authenticator: authz.Authenticator | None = None) -> FastAPI:
    app = FastAPI(title="Whale dispatcher", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    authz.install(app, authenticator or authz.Authenticator(), service="dispatcher")
    app.state.dispatcher = dispatcher
    app.include_router(router)
    install_health(app, metrics.registry(), {"subscriptions": dispatcher.waiting})
    return app


async def serve(settings: Settings, stop: asyncio.Event) -> Dispatcher:
    """Run until ``stop`` is set; returns the dispatcher (its final status) for callers and tests."""
    producer = EventProducer(settings.whale, client_id="whale-dispatcher")
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(settings, producer, client)
        people = CompactedView(settings.whale, topics.TOKENS)
        authenticator = authz.Authenticator(
            dev_mode=settings.auth.dev_mode, tokens=ViewTokenBook(people), oidc=oidc.verifier(settings.auth)
        )
        app = build_app(dispatcher, authenticator)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                **uvicorn_options(settings.whale.event_loop, settings.whale.http_parser),
            )
        )
        http = asyncio.create_task(server.serve(), name="http")
        view = await _follow_subscriptions(settings, dispatcher, stop)
        if view is not None:
            with contextlib.suppress(WhaleError):  # tokens unreadable: /status answers 401, deliveries go on
                await people.start()
            dispatcher.caught_up = True
            log.info("dispatcher_started", port=settings.port)
            await stop.wait()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await http
        if view is not None:
            await view.stop()
        await people.stop()
        await dispatcher.close()
    await asyncio.to_thread(producer.close)
    return dispatcher


async def _follow_subscriptions(
    settings: Settings, dispatcher: Dispatcher, stop: asyncio.Event
) -> CompactedView | None:
    """The started view of ``whale.subscriptions``, every record read so far applied; retries while
    Kafka is not reachable; None when ``stop`` was set first."""
    loop = asyncio.get_running_loop()

    def changed(key: str, record: CloudEvent | None) -> None:  # called on the view's thread
        loop.call_soon_threadsafe(dispatcher.apply, key, record)

    while True:
        view = CompactedView(settings.whale, topics.SUBSCRIPTIONS, on_change=changed)
        try:
            # returns after the loop ran every apply() the catch-up scheduled (FIFO callbacks)
            await view.start()
            return view
        except WhaleError as exc:
            await view.stop()
            log.error("kafka_not_ready", topic=topics.SUBSCRIPTIONS, error=exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            if stop.is_set():
                return None


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="whale run dispatcher", description=__doc__).parse_args(argv)
    settings = Settings()
    configure_logging(settings.whale, service="dispatcher")

    async def run(stop: asyncio.Event) -> None:
        await serve(settings, stop)

    return runtime.run(run, settings.whale.event_loop)
