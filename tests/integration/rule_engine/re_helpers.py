"""Helpers of the rule-engine integration tests: names unique to a test, a tap on a topic, a
worker subprocess (`whale run rule-engine` with env settings)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port
from whale import topics
from whale.binding import to_binary
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


class Worker:
    """`whale run rule-engine` in a subprocess with env settings."""

    def __init__(
        self,
        settings: WhaleSettings,
        app_id: str,
        rules_dir: Path | None,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        env = {
            **os.environ,
            "WHALE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "WHALE_RULE_ENGINE_APP_ID": app_id,
            "WHALE_RULE_ENGINE_PORT": str(self.port),
            "WHALE_LOG_FORMAT": "json",
            **(env or {}),
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
