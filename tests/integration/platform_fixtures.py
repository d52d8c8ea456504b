"""Session fixtures of the end-to-end tests: the real stack, the robot stand-in, the platform processes.

They are registered once for the whole integration suite (``tests/integration/conftest.py``), so the
e2e tests and the alert-incident test share ONE platform: two would run the same pool and consumer
groups side by side and take each other's work."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.e2e.harness import POOL, Platform, Robot
from whale import topics
from whale.admin import ensure_topics
from whale.settings import WhaleSettings
from whale.testing import Tap


@pytest.fixture(scope="session")
def e2e_stack(request: pytest.FixtureRequest) -> WhaleSettings:
    """The suite's ``stack`` fixture when there is one, else ``whale infra up`` (idempotent)."""
    try:
        settings: WhaleSettings = request.getfixturevalue("stack")
    except pytest.FixtureLookupError:
        from whale.infra import stack

        settings = WhaleSettings()
        stack.up(settings)
    ensure_topics(settings)
    ensure_topics(settings, [topics.pool_topic_spec(POOL)])
    return settings


@pytest.fixture(scope="session")
def robot() -> Iterator[Robot]:
    server = Robot()
    yield server
    server.close()


@pytest.fixture(scope="session")
def platform(
    e2e_stack: WhaleSettings, robot: Robot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    # the service logs outlive pytest's temporary-directory rotation, so a failure can be read later
    workdir = Path(os.environ.get("WHALE_E2E_DIR") or tempfile.mkdtemp(prefix="whale-e2e-"))
    running = Platform(e2e_stack, workdir, robot)
    try:
        running.start_all()
        yield running
    finally:
        running.stop()


@pytest.fixture
def results(e2e_stack: WhaleSettings) -> Iterator[Tap]:
    tap = Tap(e2e_stack, topics.RESULTS)
    yield tap
    tap.close()
