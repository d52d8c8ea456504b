"""The pull SDK's pure parts: type patterns and argument checks (Kafka behaviour is in integration tests)."""

from __future__ import annotations

import pytest

from whale.sdk import _matcher, subscribe, type_matches
from whale.settings import WhaleSettings


@pytest.mark.parametrize(
    ("types", "type_", "expected"),
    [
        (None, "anything", True),
        ("cmdb.ci.created", "cmdb.ci.created", True),
        ("cmdb.ci.created", "cmdb.ci.updated", False),
        (["cmdb.ci.*"], "cmdb.ci.deleted", True),
        (["cmdb.ci.*", "prometheus.alert.firing"], "prometheus.alert.resolved", False),
    ],
)
def test_types_are_names_or_globs(types: object, type_: str, expected: bool) -> None:
    assert type_matches(_matcher(types), type_) is expected  # type: ignore[arg-type]


def test_a_group_is_required() -> None:
    with pytest.raises(ValueError, match="consumer group"):
        subscribe(WhaleSettings(), group="")
