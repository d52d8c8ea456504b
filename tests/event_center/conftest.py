"""Fixtures of the event center's unit tests (fakes in fakes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fakes import Harness, make_harness


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from make_harness()


@pytest.fixture
def dev_harness() -> Iterator[Harness]:
    yield from make_harness(dev_mode=True)
