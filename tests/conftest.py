"""Fixtures shared by the whole suite.

``stack`` gives integration tests the real Kafka and Elasticsearch: it runs ``whale.infra.stack.up``
once per session (starting what is not running yet, or only checking the user's own clusters when
``WHALE_KAFKA_BOOTSTRAP`` / ``WHALE_ES_URL`` are set) and at the end stops only what this session
started. Tests share one broker and one node, so they name their topics, groups and indices with
``unique``.

The suite never touches the stack that ``make run`` uses: unless the user points it at their own
clusters, it runs a stack of its own on other ports (``TEST_STACK``) with its own data directory
(``<cache_dir>/test-data``), set in the environment before any test (and so inherited by every
service process a test starts). Downloads in ``<cache_dir>`` are shared.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from whale.settings import WhaleSettings

if TYPE_CHECKING:
    from whale.infra.sshd import LocalSshd

# The suite's own stack: ports away from `make run`'s (9092/9093, 9200/9300) and below tests/ports.py's range.
TEST_STACK = {
    "kafka": {"WHALE_INFRA_KAFKA_PORT": "19092", "WHALE_INFRA_KAFKA_CONTROLLER_PORT": "19093"},
    "elasticsearch": {"WHALE_INFRA_ES_PORT": "19200", "WHALE_INFRA_ES_TRANSPORT_PORT": "19300"},
}
TEST_ADDRESS = {
    "kafka": ("WHALE_KAFKA_BOOTSTRAP", "127.0.0.1:{WHALE_INFRA_KAFKA_PORT}"),
    "elasticsearch": ("WHALE_ES_URL", "http://127.0.0.1:{WHALE_INFRA_ES_PORT}"),
}


def pytest_configure(config: pytest.Config) -> None:
    """Point the whole session at the suite's own stack, unless the user named their own clusters."""
    os.environ.setdefault("WHALE_INFRA_DATA_DIR", str(WhaleSettings().cache_dir / "test-data"))
    for component, ports in TEST_STACK.items():
        address_env, template = TEST_ADDRESS[component]
        if address_env in os.environ:
            continue  # the user's own cluster
        for name, value in ports.items():
            os.environ.setdefault(name, value)
        os.environ[address_env] = template.format(**os.environ)


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


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSshd]:
    """A real OpenSSH server on a loopback port accepting one generated client key (SSH action tests);
    it lets clients tunnel through it, so it can be its own jump host."""
    from tests.ports import free_port
    from whale.infra.sshd import LocalSshd

    server = LocalSshd(tmp_path_factory.mktemp("sshd"), free_port(), forwarding=True).start()
    yield server
    server.stop()
