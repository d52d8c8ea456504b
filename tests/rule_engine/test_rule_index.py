"""The rule index returns a superset of the matching rules and only plausible candidates."""

from __future__ import annotations

from typing import Any

from whale_rule_engine.index import RuleIndex

from whale.rules import Rule, validate_rule


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
