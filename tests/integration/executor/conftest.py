"""Executor integration fixtures: a unique pool per test, a results tap, an executor in-process or
as a subprocess (for ``kill -9``), and the local HTTP stub (SaaS API + WeCom robot)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from whale_executor.app import Executor
from whale_executor.settings import Settings

from tests.executor.exec_stub import Stub, start_stub
from tests.ports import free_port
from whale import topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import Tap

CATALOG = Path(__file__).parent / "catalog"


@pytest.fixture
def pool(stack: WhaleSettings) -> Iterator[str]:
    """A pool of this test only; its topic is deleted and its catalogue tombstoned afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    ensure_topics(stack)
    ensure_topics(stack, [topics.pool_topic_spec(name)])
    yield name
    producer = EventProducer(stack)
    producer.send_blocking(topics.CATALOG, KafkaMessage(name.encode(), None, ()))
    producer.close()
    AdminClient(stack.kafka_config()).delete_topics([topics.actions_topic(name)])


@pytest.fixture
def results(stack: WhaleSettings, pool: str) -> Iterator[Tap]:
    tap = Tap(stack, topics.RESULTS, keep=lambda e: isinstance(e.data, dict) and e.data.get("pool") == pool)
    yield tap
    tap.close()


@pytest.fixture
async def producer(stack: WhaleSettings) -> AsyncIterator[EventProducer]:
    p = EventProducer(stack)
    yield p
    await asyncio.to_thread(p.close)


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = start_stub()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def env(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Secrets the test catalogue references (as the executor's environment would hold them)."""
    values = {
        "WHALE_TEST_TICKETS_TOKEN": "tok-" + uuid.uuid4().hex,
        "WHALE_TEST_WECOM_WEBHOOK": stub.url + "/cgi-bin/webhook/send?key=robot-" + uuid.uuid4().hex[:8],
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
async def executor(stack: WhaleSettings, pool: str, env: dict[str, str]) -> AsyncIterator[Executor]:
    settings = Settings(whale=stack, pool=pool, catalog_dirs=[CATALOG], session_timeout=6.0, port=free_port())
    ex = Executor(settings)
    await ex.start()
    yield ex
    await ex.stop()


def request_event(
    pool: str, name: str, params: dict[str, Any], *, kind: str = "action", key: str | None = None
) -> CloudEvent:
    return CloudEvent.create(
        type="whale.action.requested",
        source="/test/executor",
        data={
            "rule": {"id": "test-rule", "version": 1},
            "target": {"kind": kind, "name": name, "pool": pool},
            "params": params,
            "idempotency_key": key or f"k-{uuid.uuid4().hex}",
        },
        correlationid=f"corr-{uuid.uuid4().hex}",
    )


async def send_request(producer: EventProducer, event: CloudEvent) -> None:
    pool = event.data["target"]["pool"]
    await producer.send(topics.actions_topic(pool), event, key=event.data["idempotency_key"])


class Subprocess:
    """``whale run executor`` (the real command) in its own process, so a test can ``kill -9`` it."""

    def __init__(self, pool: str, log: Path, env: dict[str, str]) -> None:
        self.pool = pool
        self.log = log
        self.env = {
            **os.environ,
            **env,
            "WHALE_EXECUTOR_SESSION_TIMEOUT": "6",
            "WHALE_LOG_FORMAT": "json",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "whale",
                    "run",
                    "executor",
                    "--pool",
                    self.pool,
                    "--catalog-dir",
                    str(CATALOG),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    async def ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"executor exited: {self.log.read_text()[-3000:]}")
            text = self.log.read_text() if self.log.exists() else ""
            if text.count("executor_ready") >= self.starts:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"executor not ready: {self.log.read_text()[-3000:]}")

    @property
    def starts(self) -> int:
        return self._starts

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    _starts = 0

    def launch(self) -> None:
        self._starts += 1
        self.start()


@pytest.fixture
def spawn(tmp_path: Path, pool: str, env: dict[str, str]) -> Iterator[Subprocess]:
    sub = Subprocess(pool, tmp_path / "executor.log", env)
    yield sub
    sub.stop()
