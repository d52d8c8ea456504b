"""The shared matching language: operators, combinators, paths, typing rules and errors."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whale.cloudevent import CloudEvent
from whale.field_paths import getter
from whale.matching import (
    MISSING,
    MatchError,
    compile_match,
    event_context,
    matches,
    parse_path,
    resolve,
)

CTX: dict[str, Any] = {
    "type": "alert.fired",
    "source": "prometheus/eu-1",
    "time": "2026-11-23T10:00:00Z",
    "severity": "critical",
    "data": {
        "value": 91.5,
        "count": 3,
        "flag": True,
        "name": "disk-full on web-1",
        "tags": ["prod", "disk", 7],
        "labels": {"instance": "web-1:9100", "app.kubernetes.io/name": "web"},
        "alerts": [{"labels": {"instance": "web-1"}}, {"labels": {"instance": "web-2"}}],
        "started": "2026-11-23T09:59:00+01:00",
        "none": None,
    },
}


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


def test_paths_parse_indexes_and_quoted_keys() -> None:
    """Dotted paths with [n] indexes and ["quoted.keys"]."""
    assert parse_path('data.alerts[0].labels["a.b"]') == ("data", "alerts", 0, "labels", "a.b")
    assert resolve(CTX, parse_path("data.alerts[0].labels.instance")) == "web-1"
    with pytest.raises(ValueError):
        parse_path("data.")


def test_event_context_exposes_attributes_extensions_and_data() -> None:
    """Rules see attributes, extensions at top level, RFC 3339 time and data."""
    event = CloudEvent.create(type="t.x", source="s", data={"v": 1}, severity="high")
    ctx = event_context(event)
    assert ctx["type"] == "t.x" and ctx["severity"] == "high" and ctx["data"] == {"v": 1}
    assert matches({"field": "time", "greater": "2020-01-01T00:00:00Z"}, ctx)


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


def test_converted_leaves_stay_out_of_the_index() -> None:
    """The index holds raw values, so an `as: number` equality is not an index key."""
    cond = compile_match({"field": "data.v", "equals": 85, "as": "number"})
    assert cond.required_equalities() == {}


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["a", "b"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3).map(MappingProxyType),
    ),
    max_leaves=8,
)
_path = st.lists(
    st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 2)), min_size=1, max_size=4
).filter(lambda p: isinstance(p[0], str))


@settings(max_examples=300, deadline=None)
@given(ctx=_json, path=_path)
def test_compiled_getters_resolve_like_resolve(ctx: Any, path: list[str | int]) -> None:
    """The compiled getter of a path (the fast path for plain dicts) finds what resolve finds."""
    assert getter(tuple(path))(ctx) is resolve(ctx, tuple(path))
