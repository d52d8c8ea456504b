"""What the event center's HTTP app talks to, built once in ``main()`` (fakes in unit tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from whale import topics
from whale.admin import ensure_topics
from whale.compacted import CompactedView
from whale.errors import WhaleError
from whale.es.store import Store
from whale.producer import EventProducer
from whale_event_center.auth import TokenStore
from whale_event_center.settings import Settings
from whale_event_center.state_view import StateView

log = structlog.get_logger(__name__)


@dataclass
class Components:
    producer: Any
    schemas: Any
    rules: Any
    catalog: Any
    store: Any
    tokens: TokenStore | None
    kafka_ready: Callable[[], Awaitable[bool]]
    prepare: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())
    views_ready: asyncio.Event = field(default_factory=asyncio.Event)
    subscriptions: Any = None
    people: Any = None
    todos: Any = None  # the whale.todos view (None: the /todos router makes its own)
    runs: Any = None  # the whale.executor.state view (runs and approvals; None: no /runs, /approvals)
    """The view of ``whale.tokens`` (personal API tokens); None: only dev mode or OIDC identify people."""

    async def start_views(self) -> None:
        """Wait for Kafka, ensure the topics, then catch up on the compacted views (retrying)."""
        delay = 1.0
        while True:
            try:
                await self.prepare()
                for view in self._views():
                    await view.start()
                self.views_ready.set()
                return
            except WhaleError as exc:
                log.warning("views_not_ready", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _views(self) -> list[Any]:
        views = [self.schemas, self.rules, self.catalog, self.subscriptions, self.people, self.runs]
        return [v for v in views if v is not None]

    async def close(self) -> None:
        for view in self._views():
            await view.stop()
        await asyncio.to_thread(self.producer.close, 10)
        await self.store.close()


async def _nothing() -> None:
    return None


def build(settings: Settings) -> Components:
    """The real components: Kafka producer and views, Elasticsearch store, tokens file."""
    tokens = TokenStore.load(settings.tokens_file) if settings.tokens_file else None
    auth = None
    if settings.whale.es_username and settings.whale.es_password:
        auth = (settings.whale.es_username, settings.whale.es_password)
    admin = AdminClient(settings.whale.kafka_config())

    async def kafka_ready() -> bool:
        def probe() -> bool:
            try:
                meta = admin.list_topics(timeout=2)
            except Exception:
                return False
            return settings.ingest_topic in meta.topics and topics.TOKENS in meta.topics

        return await asyncio.to_thread(probe)

    async def prepare() -> None:
        if not await kafka_ready():
            try:
                await asyncio.to_thread(ensure_topics, settings.whale, timeout=5)
            except WhaleError as exc:
                raise WhaleError(f"Kafka at {settings.whale.kafka_bootstrap} is not ready: {exc}") from None

    return Components(
        producer=EventProducer(
            settings.whale,
            max_in_flight=settings.max_in_flight,
            delivery_timeout_ms=int(settings.produce_timeout * 1000),
            client_id="whale-event-center",
            # no fixed linger: a lone POST is sent at once; concurrent POSTs still share batches (what
            # arrives while the idempotent producer's 5 requests are in flight is sent together)
            extra={"linger.ms": 0},
        ),
        schemas=CompactedView(settings.whale, topics.SCHEMAS),
        rules=CompactedView(settings.whale, topics.RULES),
        catalog=CompactedView(settings.whale, topics.CATALOG),
        subscriptions=CompactedView(settings.whale, topics.SUBSCRIPTIONS),
        people=CompactedView(settings.whale, topics.TOKENS),
        runs=StateView(settings.whale, topics.EXECUTOR_STATE, state=settings.state),
        store=Store(settings.whale.es_url, settings.index_prefix, auth=auth),
        tokens=tokens,
        kafka_ready=kafka_ready,
        prepare=prepare,
    )
