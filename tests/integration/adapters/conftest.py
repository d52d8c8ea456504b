"""Fixtures of the adapters' integration tests: read what landed on a topic since the test began."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from whale.admin import ensure_topics
from whale.resources import event_schemas_dir
from whale.settings import WhaleSettings
from whale.testing import Tap, register_schemas

TEST_TYPES = [
    *(f"shop.order.{s}" for s in ("paid", "created", "refunded")),
    *(f"test.inventory.item.{c}" for c in ("created", "updated", "deleted")),
    *(f"cmdb.ci.{c}" for c in ("created", "updated", "deleted")),
    "test.user.created",
    "ciaudit.ci.checked",  # what examples/sdk_subscriber.py publishes
]
ALERT_TYPES = ("prometheus.alert.firing", "prometheus.alert.resolved")


def bundled_schemas(*types: str) -> dict[str, Any]:
    """Whale's own schemas of these types, as the event center registers them."""
    return {t: json.loads((event_schemas_dir() / f"{t}.json").read_text()) for t in types}


@pytest.fixture(scope="session", autouse=True)
def registered_types(stack: WhaleSettings) -> None:
    """The adapters refuse unregistered types: register the types these tests produce (any data)
    and the Alertmanager types (their bundled schemas)."""
    ensure_topics(stack)
    register_schemas(stack, {**{t: {} for t in TEST_TYPES}, **bundled_schemas(*ALERT_TYPES)})


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
