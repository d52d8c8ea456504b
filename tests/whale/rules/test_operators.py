"""The operators: each one's JSON typing, the "as": "number" conversion, the registry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.whale.rules.helpers import CTX
from whale.rules.matching import compile_match, matches
from whale.rules.operators import OPERATORS, MatchError, compile_operator


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"field": "type", "equals": "alert.fired"}, True),
        ({"field": "type", "equals": "alert.resolved"}, False),
        ({"field": "data.count", "equals": 3.0}, True),
        ({"field": "data.flag", "equals": 1}, False),
        ({"field": "data.count", "equals": "3"}, False),
        ({"field": "data.none", "equals": None}, True),
        ({"field": "data.tags", "equals": ["prod", "disk", 7]}, True),
        ({"field": "type", "not_equals": "x"}, True),
        ({"field": "type", "not_equals": "alert.fired"}, False),
        ({"field": "data.count", "not_equals": "x"}, False),
        ({"field": "data.missing", "not_equals": "x"}, False),
        ({"field": "data.value", "greater": 85}, True),
        ({"field": "data.value", "greater": 91.5}, False),
        ({"field": "data.value", "greater_or_equal": 91.5}, True),
        ({"field": "data.value", "less": 100}, True),
        ({"field": "data.value", "less_or_equal": 91}, False),
        ({"field": "data.name", "greater": 1}, False),
        ({"field": "data.flag", "greater": 0}, False),
        ({"field": "time", "greater": "2026-11-23T09:00:00Z"}, True),
        ({"field": "time", "less": "2026-11-23T11:30:00+01:00"}, True),
        ({"field": "data.started", "less": "2026-11-23T09:00:00Z"}, True),
        ({"field": "data.value", "greater": "2026-11-23T09:00:00Z"}, False),
        ({"field": "data.name", "regex": "disk-(full|low)"}, True),
        ({"field": "data.name", "regex": "^web"}, False),
        ({"field": "data.count", "regex": "3"}, False),
        ({"field": "severity", "in": ["critical", "warning"]}, True),
        ({"field": "data.flag", "in": [1]}, False),
        ({"field": "data.count", "in": [1, 2, 3]}, True),
        ({"field": "severity", "not_in": ["info"]}, True),
        ({"field": "severity", "not_in": ["critical"]}, False),
        ({"field": "data.missing", "not_in": ["critical"]}, False),
        ({"field": "data.labels.instance", "exists": True}, True),
        ({"field": "data.none", "exists": True}, True),
        ({"field": "data.nope", "exists": True}, False),
        ({"field": "data.nope", "not_exists": True}, True),
        ({"field": "data.count", "not_exists": True}, False),
        ({"field": "source", "prefix": "prometheus/"}, True),
        ({"field": "source", "suffix": "eu-1"}, True),
        ({"field": "source", "suffix": "eu-2"}, False),
        ({"field": "data.count", "prefix": "3"}, False),
        ({"field": "data.name", "contains": "full"}, True),
        ({"field": "data.tags", "contains": "disk"}, True),
        ({"field": "data.tags", "contains": 7}, True),
        ({"field": "data.tags", "contains": "web"}, False),
        ({"field": "data.count", "contains": "3"}, False),
        ({"field": "data.alerts[1].labels.instance", "equals": "web-2"}, True),
        ({"field": "data.alerts[5].labels.instance", "exists": True}, False),
        ({"field": 'data.labels["app.kubernetes.io/name"]', "equals": "web"}, True),
        ({"field": "data.name[0]", "exists": True}, False),
    ],
)
def test_each_operator_evaluates_with_json_typing(spec: dict[str, Any], expected: bool) -> None:
    """Every operator: right answers, and mismatched types or missing fields are false."""
    assert matches(spec, CTX) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"field": "data.v", "greater_or_equal": 85, "as": "number"}, True),
        ({"field": "data.v", "equals": 91.5, "as": "number"}, True),
        ({"field": "data.v", "in": [91.5, 3], "as": "number"}, True),
        ({"field": "data.n", "less": 100, "as": "number"}, True),
        ({"field": "data.sci", "greater": 1000, "as": "number"}, True),
        ({"field": "data.word", "greater": 0, "as": "number"}, False),
        ({"field": "data.word", "not_equals": 0, "as": "number"}, False),
        ({"field": "data.inf", "greater": 0, "as": "number"}, False),
        ({"field": "data.flag", "equals": 1, "as": "number"}, False),
        ({"field": "data.gone", "exists": False, "as": "number"}, True),
        ({"field": "data.v", "greater_or_equal": 85}, False),
    ],
)
def test_as_number_compares_decimal_strings_as_numbers(spec: dict[str, Any], expected: bool) -> None:
    """`as: number` reads "91.5" as 91.5; a non-decimal string, "inf" or a boolean matches nothing;
    without `as`, the string "91.5" is not a number (JSON typing)."""
    ctx = {"data": {"v": " 91.5", "n": 42, "sci": "1.5e3", "word": "high", "inf": "inf", "flag": True}}
    assert matches(spec, ctx) is expected


def test_the_registry_names_every_operator_and_text_operators_refuse_as_number() -> None:
    """Operators are looked up by name; an unknown name and `as` on a text operator are refused."""
    assert list(OPERATORS)[:3] == ["equals", "not_equals", "greater"]
    assert {name for name, op in OPERATORS.items() if op.text} == {"regex", "prefix", "suffix"}
    assert compile_operator("prefix", "a", "x")("abc")
    with pytest.raises(MatchError, match="unknown operator 'near'"):
        compile_operator("near", 1, "x")
    with pytest.raises(MatchError, match="does not apply to the text operator"):
        compile_match({"field": "a", "prefix": "1", "as": "number"})
