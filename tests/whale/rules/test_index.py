"""The rule index returns a superset of the matching rules and only plausible candidates."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whale.rules.index import RuleIndex, regex_prefix
from whale.rules.model import Rule, validate_rule


def rule(rule_id: str, match: dict[str, Any], enabled: bool = True) -> Rule:
    return validate_rule(
        {"id": rule_id, "enabled": enabled, "match": match, "target": {"kind": "action", "name": "a"}}
    )


RULES = [
    rule("by-type", {"all": [{"field": "type", "equals": "a"}, {"field": "data.v", "greater": 1}]}),
    rule("by-type-in", {"field": "type", "in": ["a", "b"]}),
    rule("by-two", {"all": [{"field": "type", "equals": "b"}, {"field": "data.env", "equals": "prod"}]}),
    rule("either", {"any": [{"field": "type", "equals": "c"}, {"field": "data.env", "equals": "dev"}]}),
    rule("unindexed", {"field": "data.v", "greater": 100}),
    rule("never", {"all": [{"field": "type", "equals": "a"}, {"field": "type", "equals": "b"}]}),
    rule("off", {"field": "type", "equals": "a"}, enabled=False),
]


def ids(rules: list[Rule]) -> list[str]:
    return [r.id for r in rules]


def test_candidates_come_from_equality_constraints() -> None:
    """Only rules whose equality constraints the event meets (plus unindexable ones) are tested."""
    index = RuleIndex(RULES)
    assert ids(index.candidates({"type": "a", "data": {"v": 5}})) == ["by-type", "by-type-in", "unindexed"]
    assert ids(index.candidates({"type": "b", "data": {"env": "prod"}})) == [
        "by-two",
        "by-type-in",
        "unindexed",
    ]
    assert ids(index.candidates({"type": "z", "data": {"env": "dev"}})) == ["either", "unindexed"]
    assert ids(index.match({"type": "a", "data": {"v": 500}})) == ["by-type", "by-type-in", "unindexed"]
    assert ids(index.match({"type": "a", "data": {"v": "500"}})) == ["by-type-in"]


def test_index_agrees_with_a_linear_scan() -> None:
    """Indexed matching equals testing every enabled rule."""
    index = RuleIndex(RULES)
    contexts: list[dict[str, Any]] = [
        {"type": t, "data": {"v": v, "env": e}}
        for t in ("a", "b", "c", "d", 1, None)
        for v in (0, 5, 500)
        for e in ("prod", "dev", None)
    ]
    for ctx in contexts:
        linear = [r.id for r in RULES if r.enabled and r.condition.evaluate(ctx)]
        assert ids(index.match(ctx)) == sorted(linear), ctx


def test_replace_and_remove_keep_the_index_clean() -> None:
    """A new version replaces the old one; removal leaves no trace; disabling removes from matching."""
    index = RuleIndex(RULES)
    index.put(rule("by-type", {"field": "type", "equals": "q"}))
    assert "by-type" not in ids(index.candidates({"type": "a"}))
    assert "by-type" in ids(index.candidates({"type": "q"}))
    index.put(rule("by-type", {"field": "type", "equals": "q"}, enabled=False))
    assert "by-type" not in index
    for r in RULES:
        index.remove(r.id)
    assert len(index) == 0 and index.signatures == 0


def test_text_patterns_index_prefixes_suffixes_and_anchored_regexes() -> None:
    """Rules with only prefix, suffix or ``^literal`` regex constraints are candidates only for
    values that start (end) with their text; an unanchored regex is tested for every event."""
    index = RuleIndex(
        [
            rule("p-web", {"field": "subject", "prefix": "web-"}),
            rule("p-web-1", {"field": "subject", "prefix": "web-1."}),
            rule("s-prod", {"field": "subject", "suffix": ".prod"}),
            rule("r-db", {"field": "subject", "regex": r"^db-\d+\.eu"}),
            rule("r-loose", {"field": "subject", "regex": "eu"}),
            rule(
                "both", {"all": [{"field": "subject", "prefix": "web-"}, {"field": "data.v", "greater": 1}]}
            ),
        ]
    )
    assert index.signatures == 0
    assert ids(index.candidates({"subject": "web-1.eu.prod"})) == [
        "both",
        "p-web",
        "p-web-1",
        "r-loose",
        "s-prod",
    ]
    assert ids(index.candidates({"subject": "db-7.eu"})) == ["r-db", "r-loose"]
    assert ids(index.candidates({"subject": 7})) == ["r-loose"]
    assert ids(index.match({"subject": "db-7.eu", "data": {"v": 2}})) == ["r-db", "r-loose"]
    assert ids(index.match({"subject": "web-2.us", "data": {"v": 2}})) == ["both", "p-web"]
    index.remove("p-web-1")
    index.remove("s-prod")
    assert ids(index.candidates({"subject": "web-1.eu.prod"})) == ["both", "p-web", "r-loose"]


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        (r"^web-\d+$", "web-"),
        (r"^db\.eu", "db.eu"),
        (r"^abc*", "ab"),
        (r"^ab?c", "a"),
        (r"^a{2}", ""),
        (r"^a|b", ""),
        (r"web", ""),
        (r"^(?:a)", ""),
        (r"^\w+", ""),
        (r"^x[yz]", "x"),
    ],
)
def test_regex_prefix_is_the_literal_every_match_starts_with(pattern: str, prefix: str) -> None:
    assert regex_prefix(pattern) == prefix


_values = st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 2), st.booleans(), st.none())
_fields = st.sampled_from(["type", "data.k", "data.n", "data.list[0]", "subject"])
_texts = st.sampled_from(["a", "ab", "b", "ba", "", "a.b", "x"])
_leaf = st.one_of(
    st.builds(lambda f, t: {"field": f, "prefix": t}, _fields, _texts),
    st.builds(lambda f, t: {"field": f, "suffix": t}, _fields, _texts),
    st.builds(
        lambda f, r: {"field": f, "regex": r},
        _fields,
        st.sampled_from(["^a", "^ab", "^a+b", "^a.b", "^a\\.b", "b$", "^b|a", "^(a)", "a"]),
    ),
    st.builds(lambda f, t: {"field": f, "contains": t}, _fields, _texts),
    st.builds(lambda f, v: {"field": f, "not_equals": v}, _fields, _values),
    st.builds(lambda f, vs: {"field": f, "not_in": vs}, _fields, st.lists(_values, min_size=1, max_size=3)),
    st.builds(lambda f, v: {"field": f, "equals": v}, _fields, _values),
    st.builds(lambda f, vs: {"field": f, "in": vs}, _fields, st.lists(_values, min_size=1, max_size=3)),
    st.builds(lambda f, v: {"field": f, "greater": v}, _fields, st.integers(0, 2)),
    st.builds(lambda f: {"field": f, "exists": True}, _fields),
)
_spec = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)
_strings = st.text(alphabet="ab.x", max_size=5)
_any_value = st.one_of(_values, _strings)
_ctx = st.fixed_dictionaries(
    {
        "type": _any_value,
        "subject": _any_value,
        "data": st.fixed_dictionaries(
            {"k": _any_value, "n": _values, "list": st.lists(_any_value, max_size=2)}
        ),
    }
)


@settings(max_examples=400, deadline=None)
@given(specs=st.lists(_spec, min_size=1, max_size=8), contexts=st.lists(_ctx, min_size=1, max_size=5))
def test_index_never_misses_a_match_property(
    specs: list[dict[str, Any]], contexts: list[dict[str, Any]]
) -> None:
    """For any rules and events, indexed matching equals a brute-force evaluation of every rule
    (equalities, text patterns, negations, combinators), also after removing half the rules."""
    rules = [rule(f"r{i}", spec) for i, spec in enumerate(specs)]
    index = RuleIndex(rules)
    for ctx in contexts:
        assert ids(index.match(ctx)) == sorted(r.id for r in rules if r.condition.evaluate(ctx))
    for r in rules[::2]:
        index.remove(r.id)
    for ctx in contexts:
        expected = sorted(r.id for r in rules[1::2] if r.condition.evaluate(ctx))
        assert ids(index.match(ctx)) == expected
