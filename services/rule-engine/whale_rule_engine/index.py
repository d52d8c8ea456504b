"""The rule index: an event is tested only against rules whose equality constraints it meets.

Each rule's necessary equality constraints (``type equals x``, ``data.env in [a, b]``, found by
:meth:`whale.matching.Condition.required_equalities`) form a *signature* (the sorted field paths)
and one or more value tuples. Rules with the same signature share a hash table keyed by the value
tuple, so matching costs one lookup per distinct signature (a handful of rule shapes) plus the
candidates, whatever the number of rules. Rules without any equality constraint are always tested.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from whale.matching import All, AnyOf, Condition, Leaf, Path, resolve, scalar_key
from whale.rules import Rule

MAX_COMBINATIONS = 256
Values = tuple[tuple[str, Any], ...]


class RuleIndex:
    """Enabled rules by signature and values. Not thread-safe: mutate from one thread."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        self._tables: dict[tuple[Path, ...], dict[Values, dict[str, Rule]]] = {}
        self._placed: dict[str, list[tuple[tuple[Path, ...], Values]]] = {}
        self._always: dict[str, Rule] = {}
        for rule in rules:
            self.put(rule)

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def rules(self) -> list[Rule]:
        return sorted(self._rules.values(), key=lambda r: r.id)

    @property
    def signatures(self) -> int:
        """How many hash lookups one event costs (plus the unindexed rules)."""
        return len(self._tables)

    def put(self, rule: Rule) -> None:
        """Add or replace a rule (disabled rules are kept out of matching)."""
        self.remove(rule.id)
        if not rule.enabled:
            return
        self._rules[rule.id] = rule
        options = alternatives(rule.condition)
        if not options:
            self._always[rule.id] = rule
            return
        placed: list[tuple[tuple[Path, ...], Values]] = []
        for required in options:
            if any(not values for values in required.values()):
                continue  # contradictory (type equals a and b): this alternative never holds
            signature = tuple(sorted(required, key=repr))
            table = self._tables.setdefault(signature, {})
            for combo in itertools.product(*(sorted(required[p], key=repr) for p in signature)):
                table.setdefault(combo, {})[rule.id] = rule
                placed.append((signature, combo))
        self._placed[rule.id] = placed

    def remove(self, rule_id: str) -> None:
        self._rules.pop(rule_id, None)
        self._always.pop(rule_id, None)
        for signature, key in self._placed.pop(rule_id, []):
            table = self._tables.get(signature, {})
            bucket = table.get(key)
            if bucket is not None:
                bucket.pop(rule_id, None)
                if not bucket:
                    del table[key]
            if not table:
                self._tables.pop(signature, None)

    def candidates(self, ctx: Mapping[str, Any]) -> list[Rule]:
        """Rules that may match ``ctx`` (a superset of the matches), sorted by id."""
        found: dict[str, Rule] = dict(self._always)
        for signature, table in self._tables.items():
            key = []
            for path in signature:
                tagged = scalar_key(resolve(ctx, path))
                if tagged is None:
                    break
                key.append(tagged)
            else:
                bucket = table.get(tuple(key))
                if bucket:
                    found.update(bucket)
        return [found[k] for k in sorted(found)]

    def match(self, ctx: Mapping[str, Any]) -> list[Rule]:
        """Rules whose condition holds for ``ctx``, sorted by id."""
        return [rule for rule in self.candidates(ctx) if rule.condition.evaluate(ctx)]


Required = dict[Path, frozenset[tuple[str, Any]]]


def alternatives(condition: Condition) -> list[Required]:
    """Equality constraints of which at least one set must hold when ``condition`` does (a
    disjunction of conjunctions); an empty list means the rule cannot be indexed."""
    if isinstance(condition, Leaf):
        required = condition.required_equalities()
        return [_bounded(required)] if required else []
    if isinstance(condition, All):
        required = condition.required_equalities()
        if required:
            return [_bounded(required)]
        for child in condition.children:
            found = alternatives(child)
            if found:
                return found
        return []
    if isinstance(condition, AnyOf):
        out: list[Required] = []
        for child in condition.children:
            found = alternatives(child)
            if not found:
                return []
            out.extend(found)
        return out
    return []


def _bounded(required: Required) -> Required:
    """Drop the widest constraints until the value combinations stay few."""
    required = dict(required)
    while len(required) > 1 and _combinations(required) > MAX_COMBINATIONS:
        del required[max(required, key=lambda p: len(required[p]))]
    return required


def _combinations(required: Mapping[Path, frozenset[Any]]) -> int:
    total = 1
    for values in required.values():
        total *= max(len(values), 1)
    return total
