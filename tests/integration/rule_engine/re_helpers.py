"""Helpers of the rule-engine integration tests: names unique to a test, a tap on a topic, a
worker subprocess (`whale run rule-engine` with env settings)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.kafka_tail import TailThread, plain
from tests.ports import free_port
from whale import topics
from whale.binding import KafkaMessage, from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings

WHALE = str(Path(sys.executable).with_name("whale"))


@dataclass
class Scope:
    """Names unique to one test."""

    tag: str
    app_id: str
    pool: str
    type: str

    @property
    def actions_topic(self) -> str:
        return topics.actions_topic(self.pool)


class Tap(TailThread):
    """Raw messages of one topic written after the tap opened, kept when ``keep(msg)`` says so."""

    def __init__(self, settings: WhaleSettings, topic: str, keep: Callable[[KafkaMessage], bool]) -> None:
        super().__init__(settings, topic)
        self._keep = keep
        self.messages: list[KafkaMessage] = []
        self.start()

    def take(self, msg: Any) -> None:
        message = plain(msg)
        if self._keep(message):
            self.messages.append(message)

    def events(self) -> list[CloudEvent]:
        return [from_kafka(m) for m in list(self.messages)]

    def wait(self, count: int, timeout: float = 90.0) -> list[KafkaMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.1)
        return list(self.messages)

    def settle(self, quiet: float = 3.0) -> list[KafkaMessage]:
        """Wait until nothing new arrived for ``quiet`` seconds (to check that nothing more comes)."""
        seen, since = -1, time.monotonic()
        while time.monotonic() - since < quiet:
            if len(self.messages) != seen:
                seen, since = len(self.messages), time.monotonic()
            time.sleep(0.1)
        return list(self.messages)


class Worker:
    """`whale run rule-engine` in a subprocess with env settings."""

    def __init__(self, settings: WhaleSettings, app_id: str, rules_dir: Path | None, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {
            **os.environ,
            "WHALE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "WHALE_RULE_ENGINE_APP_ID": app_id,
            "WHALE_RULE_ENGINE_PORT": str(self.port),
            "WHALE_LOG_FORMAT": "json",
        }
        if rules_dir is not None:
            env["WHALE_RULES_DIR"] = str(rules_dir)
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [WHALE, "run", "rule-engine"], env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def kill9(self) -> None:
        """SIGKILL: no graceful shutdown, no final commit or flush."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self._out.closed:
            self._out.close()
        return int(self.proc.returncode)


def send(producer: EventProducer, topic: str, event: CloudEvent, key: str | None = None) -> None:
    producer.send_blocking(topic, to_binary(event, key))
