"""An isolated event-center pipeline on the real Kafka and Elasticsearch, run in this process.

Each module gets its own ingest/events topics, changelog, consumer groups and index prefix, so
foreign events on the shared broker never reach these tests (and ours never reach anyone else's).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from whale_dedupe.app import DedupeStage, ensure_changelog
from whale_dedupe.settings import Settings as DedupeSettings
from whale_event_center import components
from whale_event_center.app import create_app
from whale_event_center.settings import Settings
from whale_indexer.app import Indexer
from whale_indexer.settings import Settings as IndexerSettings

from tests.ports import free_port
from whale import tokens as personal
from whale import topics
from whale.admin import ensure_topics
from whale.authz import Role
from whale.compacted import put
from whale.es.store import Store
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.topics import TopicSpec

TOKEN = "integration-token-" + uuid.uuid4().hex
_ADMIN: dict[str, str] = {}


def admin_token(stack: WhaleSettings) -> str:
    """A real personal admin token (1 day) on whale.tokens, made once per test session."""
    if "token" not in _ADMIN:
        token_id, token = personal.new_personal_token()
        record = personal.new_record(
            token, token_id, name="integration-admin", role=Role.admin, ttl=timedelta(days=1)
        )

        async def write() -> None:
            producer = EventProducer(stack, client_id="whale-tests")
            try:
                await put(producer, topics.TOKENS, token_id, personal.to_event(record))
            finally:
                await asyncio.to_thread(producer.close)

        # on a thread of its own: a caller may already run an event loop (asyncio.run would refuse)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, write()).result()
        _ADMIN["token"] = token
    return _ADMIN["token"]


class TestAuth(httpx.Auth):
    """The sender token for ``POST /events``, the admin's personal token for every other route
    (a request that names its own Authorization keeps it)."""

    requires_response_body = True

    def __init__(self, admin: str) -> None:
        self.admin = admin

    def auth_flow(self, request: httpx.Request) -> Any:
        ours = "authorization" not in request.headers
        if ours:
            sender = request.method == "POST" and request.url.path == "/events"
            request.headers["authorization"] = f"Bearer {TOKEN if sender else self.admin}"
        response = yield request
        # the session's admin token is written once; an event center already running sees it when
        # its view of whale.tokens reads the record, which may be just after this first request
        deadline = time.monotonic() + 30
        while ours and _unknown_token(response) and time.monotonic() < deadline:
            time.sleep(0.2)
            response = yield request


def _unknown_token(response: httpx.Response) -> bool:
    return response.status_code == 401 and "unknown token" in response.text


class AppThread:
    """The event-center app under uvicorn on a free port, in a background thread."""

    def __init__(self, settings: Settings, parts: components.Components | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings, parts or components.build(settings))
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    def __enter__(self) -> AppThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "event center did not start"
            time.sleep(0.05)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        parts = self.app.state.components
        deadline = time.monotonic() + timeout
        while not parts.views_ready.is_set():
            assert time.monotonic() < deadline, "the schema registry did not load"
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class LoopThread:
    """Runs ``make()``'s ``run()`` coroutine in its own event loop; ``stop()`` then joins."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self.worker: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._started = threading.Event()

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self.worker = self._make()
            self._started.set()
            await self.worker.run()

        asyncio.run(body())

    def start(self) -> LoopThread:
        self._thread.start()
        assert self._started.wait(30)
        deadline = time.monotonic() + 60
        while not self.worker.assigned.is_set():
            assert time.monotonic() < deadline, "consumer got no partitions"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.worker.stop)
        self._thread.join(60)


class Pipeline:
    def __init__(self, stack: WhaleSettings, tmp: Path) -> None:
        uid = uuid.uuid4().hex[:10]
        self.uid = uid
        self.stack = stack
        self.type = f"test.ec.{uid}.alert"
        self.source_prefix = f"urn:test:ec:{uid}:"
        ingest, events = f"test.ec.{uid}.ingest", f"test.ec.{uid}.events"
        ensure_topics(
            stack,
            [TopicSpec(ingest, 3, "test ingest", retention_ms=3_600_000), TopicSpec(events, 3, "test events", retention_ms=3_600_000)],
        )  # fmt: skip
        tokens = tmp / "tokens.yaml"
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        tokens.write_text(
            f"tokens:\n  - name: tests\n    sha256: {digest}\n    sources: ['{self.source_prefix}*']\n"
        )
        self.settings = Settings(
            whale=stack,
            port=free_port(),
            tokens_file=tokens,
            ingest_topic=ingest,
            events_topic=events,
            index_prefix=f"test-ec-{uid}",
            schemas_dir=None,
        )
        self.events_topic = events
        self.dedupe_settings = DedupeSettings(
            whale=stack,
            ingest_topic=ingest,
            events_topic=events,
            group=f"test-ec-dedupe-{uid}",
            changelog=f"test.ec.{uid}.changelog",
        )
        self.indexer_settings = IndexerSettings(
            whale=stack, topics=[events], index_prefix=f"test-ec-{uid}", group=f"test-ec-indexer-{uid}"
        )
        ensure_changelog(self.dedupe_settings)
        self.dedupe: LoopThread | None = None
        self.indexer: LoopThread | None = None

    def start_dedupe(self) -> None:
        self.dedupe = LoopThread(lambda: DedupeStage(self.dedupe_settings, EventProducer(self.stack))).start()

    def stop_dedupe(self) -> None:
        if self.dedupe is not None:
            self.dedupe.stop()
            self.dedupe = None

    def start_indexer(self) -> None:
        self.indexer = LoopThread(
            lambda: Indexer(
                self.indexer_settings, Store(self.stack.es_url, self.indexer_settings.index_prefix)
            )
        ).start()

    def client(self, url: str) -> httpx.Client:
        return httpx.Client(base_url=url, auth=TestAuth(admin_token(self.stack)), timeout=30)
