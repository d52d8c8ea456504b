"""Fixtures of the executor's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .exec_stub import Stub, start_stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = start_stub()
    yield server
    server.server.shutdown()
    server.server.server_close()
