"""Fixtures shared by the whole suite.

``stack`` gives integration tests the real Kafka and Elasticsearch: it runs ``whale.infra.stack.up``
once per session (starting what is not running yet, or only checking the user's own clusters when
``WHALE_KAFKA_BOOTSTRAP`` / ``WHALE_ES_URL`` are set) and at the end stops only what this session
started. Tests share one broker and one node, so they name their topics, groups and indices with
``unique``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from whale.settings import WhaleSettings


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Local stores (``WHALE_STATE_DIR``) of the stages under test live in a temporary directory,
    inherited by the stage processes the crash tests start."""
    before = os.environ.get("WHALE_STATE_DIR")
    os.environ["WHALE_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        os.environ.pop("WHALE_STATE_DIR", None)
    else:
        os.environ["WHALE_STATE_DIR"] = before


@pytest.fixture(scope="session")
def stack() -> Iterator[WhaleSettings]:
    """Settings that point at a running Kafka and Elasticsearch (started for this session if needed)."""
    from whale.admin import ensure_topics
    from whale.infra import stack as infra

    settings = WhaleSettings()
    status = infra.up(settings)
    try:
        ensure_topics(status.settings)  # the contract's topics exist, each partition with a leader
        yield status.settings
    finally:
        if status.started:
            infra.down(settings, components=status.started)


@pytest.fixture
def unique() -> str:
    """A fresh uuid4 hex string, to keep this test's topics, groups and indices apart from others'."""
    return uuid.uuid4().hex
