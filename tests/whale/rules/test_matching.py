"""The shared matching language: combinators, compilation errors, explain and index equalities."""

from __future__ import annotations

from typing import Any

import pytest

from tests.whale.rules.helpers import CTX
from whale.rules.matching import compile_match, matches
from whale.rules.operators import MatchError
from whale.rules.paths import MISSING


def test_combinators_nest() -> None:
    """all / any / not combine and nest to any depth."""
    spec = {
        "all": [
            {"field": "type", "equals": "alert.fired"},
            {"any": [{"field": "data.value", "greater": 95}, {"field": "severity", "equals": "critical"}]},
            {"not": {"field": "data.labels.instance", "prefix": "db-"}},
        ]
    }
    assert matches(spec, CTX)
    assert not matches({"not": spec}, CTX)
    assert not matches({"any": [{"not": {"field": "type", "exists": True}}]}, CTX)


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"field": "x", "regex": "("}, "regex", "invalid regular expression"),
        ({"field": "x", "like": "a"}, "like", "unknown operator 'like'"),
        ({"field": "x", "greater": "ten"}, "greater", "neither a number nor an RFC 3339"),
        ({"field": "x", "greater": [1]}, "greater", "number or an RFC 3339"),
        ({"field": "x", "in": "abc"}, "in", "non-empty list"),
        ({"field": "x", "exists": "yes"}, "exists", "true or false"),
        ({"field": "x", "prefix": 3}, "prefix", "string operand"),
        ({"field": "x", "contains": {"a": 1}}, "contains", "scalar operand"),
        ({"field": "a..b", "exists": True}, "field", "empty segment"),
        ({"field": "", "exists": True}, "field", "non-empty string"),
        ({"field": "x"}, "", "no operator"),
        ({"field": "x", "equals": 1, "less": 2}, "", "several operators"),
        ({"all": []}, "all", "non-empty list"),
        ({"all": [{"field": "x", "equals": 1}, {"field": "y", "regex": "["}]}, "all[1].regex", "invalid"),
        ({"any": [{"not": {"field": "x", "wat": 1}}]}, "any[0].not.wat", "unknown operator"),
        ({"all": [1], "any": []}, "", "only key"),
        ({"value": 3}, "", "needs 'field'"),
        ("type == x", "", "must be an object"),
        ({"field": "x", "greater": 1, "as": "int"}, "as", "unknown conversion 'int'"),
        ({"field": "x", "regex": "9", "as": "number"}, "as", "does not apply to the text operator regex"),
    ],
)
def test_malformed_specs_raise_precise_match_errors(spec: Any, field: str, words: str) -> None:
    """Bad regex, unknown operator, wrong operand type... name the spec path and say why."""
    with pytest.raises(MatchError) as caught:
        compile_match(spec)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_evaluate_never_raises_on_odd_contexts() -> None:
    """Contexts of any shape make a non-match, not an exception."""
    cond = compile_match({"field": "data.a[0].b", "greater": 1})
    ctx: dict[str, Any]
    for ctx in (
        {},
        {"data": None},
        {"data": {"a": "str"}},
        {"data": {"a": [None]}},
        {"data": {"a": [{"b": {}}]}},
    ):
        assert cond.evaluate(ctx) is False


def test_explain_reports_each_criterion_with_the_value_seen() -> None:
    """explain() lists every leaf, whether it passed, and the value it saw."""
    cond = compile_match(
        {"all": [{"field": "type", "equals": "alert.fired"}, {"field": "data.value", "greater": 95}]}
    )
    got = cond.explain(CTX)
    assert [(c.field, c.passed, c.value) for c in got] == [
        ("type", True, "alert.fired"),
        ("data.value", False, 91.5),
    ]
    assert got[1].where == "all[1]"
    assert "FAILED" in got[1].describe() and "91.5" in got[1].describe()
    missing = compile_match({"field": "data.zzz", "equals": 1}).explain(CTX)[0]
    assert missing.value is MISSING and "missing" in missing.describe()


def test_required_equalities_feed_the_index() -> None:
    """Equality and in constraints that must hold are extracted (all intersects, any unions)."""
    cond = compile_match(
        {
            "all": [
                {"field": "type", "in": ["a", "b"]},
                {"field": "type", "equals": "a"},
                {"any": [{"field": "data.k", "equals": 1}, {"field": "data.k", "equals": 2}]},
                {"field": "data.v", "greater": 3},
            ]
        }
    )
    req = cond.required_equalities()
    assert req[("type",)] == frozenset({("s", "a")})
    assert req[("data", "k")] == frozenset({("n", 1), ("n", 2)})
    assert ("data", "v") not in req


def test_converted_leaves_stay_out_of_the_index() -> None:
    """The index holds raw values, so an `as: number` equality is not an index key."""
    cond = compile_match({"field": "data.v", "equals": 85, "as": "number"})
    assert cond.required_equalities() == {}
