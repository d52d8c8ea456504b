"""Fixtures of the executor's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ports import free_port
from whale.infra.sshd import LocalSshd

from .exec_stub import Stub, start_stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = start_stub()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSshd]:
    """A real OpenSSH server on a loopback port, accepting one generated client key."""
    server = LocalSshd(tmp_path_factory.mktemp("sshd"), free_port()).start()
    yield server
    server.stop()
