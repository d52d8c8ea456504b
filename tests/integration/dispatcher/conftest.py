"""Fixtures of the dispatcher's integration tests: the adapters' ``taps`` (read what landed on a topic)."""

from __future__ import annotations

from tests.integration.adapters.conftest import taps

__all__ = ["taps"]
