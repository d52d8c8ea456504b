"""Unit tests of whale.infra run with the environment cleared of settings that would change them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_whale_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WHALE_INFRA_") or name in (
            "WHALE_KAFKA_BOOTSTRAP",
            "WHALE_ES_URL",
            "WHALE_CACHE_DIR",
        ):
            monkeypatch.delenv(name)
