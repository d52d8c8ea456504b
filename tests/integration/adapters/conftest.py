"""Fixtures of the adapters' integration tests: read what landed on a topic since the test began."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from whale.admin import ensure_topics
from whale.settings import WhaleSettings
from whale.testing import Tap


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
