"""Fixtures of the adapters' integration tests: read what landed on a topic since the test began."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from whale.admin import ensure_topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.tail import tail_consumer


class Tap:
    """Reads a topic from the offsets it had when the tap was created (no consumer group commits)."""

    def __init__(self, settings: WhaleSettings, topic: str) -> None:
        self.topic = topic
        self._consumer = tail_consumer(settings, topic)
        self.seen: list[tuple[CloudEvent, KafkaMessage]] = []

    def _poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg: Any = self._consumer.poll(0.1)
            if msg is None or msg.error() is not None:
                continue
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
            try:
                self.seen.append((from_kafka(plain), plain))
            except Exception:  # foreign poison messages are not ours
                continue

    def wait(
        self, predicate: Callable[[CloudEvent], bool], count: int, timeout: float = 60.0, settle: float = 0.0
    ) -> list[CloudEvent]:
        """Events matching ``predicate`` once ``count`` arrived (then ``settle`` seconds more for extras)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e, _ in self.seen if predicate(e)]
            if len(found) >= count:
                break
            self._poll(0.5)
        if settle:
            self._poll(settle)
        return [e for e, _ in self.seen if predicate(e)]

    async def await_(
        self, predicate: Callable[[CloudEvent], bool], count: int, **kw: Any
    ) -> list[CloudEvent]:
        return await asyncio.to_thread(self.wait, predicate, count, **kw)

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def taps(stack: WhaleSettings) -> Iterator[Callable[[str], Tap]]:
    ensure_topics(stack)
    opened: list[Tap] = []

    def open_tap(topic: str) -> Tap:
        tap = Tap(stack, topic)
        opened.append(tap)
        return tap

    yield open_tap
    for tap in opened:
        tap.close()
