"""Fixtures of the alert tests: the adapters service on the real Kafka, a real Prometheus and
Alertmanager pointed at it, and a tap on whale.ingest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from whale_adapters.app import serve
from whale_adapters.config import AdaptersConfig
from whale_adapters.settings import Settings

from tests.integration.adapters.conftest import ALERT_TYPES, bundled_schemas
from tests.integration.alerts.monitoring import Monitoring, NodeMetrics, Unavailable, install
from tests.ports import free_port
from whale import topics
from whale.settings import WhaleSettings
from whale.testing import Tap, register_schemas

TOKEN = "alerts-it-token"


@pytest.fixture(scope="session")
def binaries() -> tuple[Path, Path]:
    try:
        return install()
    except Unavailable as exc:
        pytest.skip(f"Prometheus/Alertmanager not installed and cannot be installed here: {exc}")


@pytest.fixture
def ingest(stack: WhaleSettings) -> Iterator[Tap]:
    tap = Tap(stack, topics.INGEST)
    yield tap
    tap.close()


@pytest.fixture
async def adapters(stack: WhaleSettings, unique: str, ingest: Tap) -> AsyncIterator[Settings]:
    """``whale run adapters`` (in-process) with its own Alertmanager source for this test."""
    register_schemas(stack, bundled_schemas(*ALERT_TYPES))  # the adapters refuse unregistered types
    settings = Settings(
        port=free_port(), alertmanager_token=TOKEN, alertmanager_source=f"/test/am/{unique}", whale=stack
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, AdaptersConfig()))
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if task.done():
                task.result()
            try:
                if (await client.get(f"http://127.0.0.1:{settings.port}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    yield settings
    stop.set()
    await asyncio.wait_for(task, 60)


@pytest.fixture
def node() -> Iterator[NodeMetrics]:
    metrics = NodeMetrics()
    yield metrics
    metrics.close()


@pytest.fixture
def monitoring(
    binaries: tuple[Path, Path], tmp_path: Path, node: NodeMetrics, adapters: Settings
) -> Iterator[Monitoring]:
    mon = Monitoring(
        binaries,
        tmp_path,
        target=node.instance,
        webhook=f"http://127.0.0.1:{adapters.port}/alertmanager",
        token=TOKEN,
    )
    try:
        mon.start()
        yield mon
    finally:
        mon.stop()


# The whole platform as processes: tests/integration/conftest.py (shared with the e2e tests).
