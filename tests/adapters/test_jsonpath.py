"""The small JSON path used by webhook and poller configuration."""

from __future__ import annotations

import pytest
from whale_adapters.errors import MappingError
from whale_adapters.jsonpath import Missing, compile_path

DOC = {"order": {"id": 7, "lines": [{"sku": "a"}], "odd-key": True}, "weird key": 1}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOC),
        ("$.order.id", 7),
        ("$.order.lines[0].sku", "a"),
        ("$.order['odd-key']", True),
        ('$["weird key"]', 1),
    ],
)
def test_paths_find_values(path: str, value: object) -> None:
    assert compile_path(path).find(DOC) == value


def test_a_missing_step_is_named() -> None:
    with pytest.raises(Missing, match=r"\$\.order\.lines\[3\] does not exist"):
        compile_path("$.order.lines[3].sku").find(DOC)


@pytest.mark.parametrize("path", ["order.id", "$.order..id", "$[x]"])
def test_malformed_paths_are_config_errors(path: str) -> None:
    with pytest.raises(MappingError):
        compile_path(path, field="webhooks.0.id")
