"""The rule index: an event is tested only against rules whose necessary constraints it meets.

Shared by the rule engine and the to-do stage. From each rule's condition the index takes, per
alternative of its top-level ``any`` (a disjunction of conjunctions), the constraints that must
hold for the rule to match:

- **equalities** (``type equals x``, ``data.env in [a, b]``, from
  :meth:`whale.rules.matching.Condition.required_equalities`): the sorted field paths form a *signature*;
  rules with the same signature share a hash table keyed by the value tuple, so an event costs one
  lookup per distinct signature (a handful of rule shapes), whatever the number of rules;
- otherwise a **text pattern** on one field: ``prefix``, ``suffix``, or a ``regex`` that starts with
  ``^`` and a literal (its necessary prefix). Patterns of a field are kept by length, so an event
  costs one slice and one lookup per distinct pattern length of that field (at most the longest
  pattern), whatever the number of rules; only the rules whose pattern the value starts (ends)
  with become candidates.

Rules with an alternative that gives neither are tested for every event. The index resolves each
field it uses once per event (the event is flattened once), keeps each rule's compiled condition in
a plain slot, and returns exactly the rules whose condition holds, sorted by id.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from whale.rules.matching import All, AnyOf, Condition, Leaf, predicate
from whale.rules.model import Rule
from whale.rules.paths import MISSING, Path, getter, scalar_key

MAX_COMBINATIONS = 256
Key = Any  # a table key: the string itself, or a scalar_key tuple; a tuple of these for several fields
Required = dict[Path, frozenset[tuple[str, Any]]]
_REGEX_META = frozenset(".^$*+?{}[]()|\\")
_QUANTIFIERS = frozenset("*+?{")
_NONE: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Pattern:
    """A necessary text constraint: the field's value is a string that starts (ends) with ``text``."""

    path: Path
    kind: str  # "prefix" | "suffix"
    text: str


@dataclass(slots=True)
class Need:
    """One alternative's necessary constraints: equalities, or else one text pattern."""

    equal: Required = field(default_factory=dict)
    pattern: Pattern | None = None


class _Entry:
    """A rule as the index holds it: the compiled condition's test in a plain slot."""

    __slots__ = ("evaluate", "id", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.id = rule.id
        self.evaluate: Callable[[Mapping[str, Any]], bool] = predicate(rule.condition)


class _Texts:
    """Patterns of one kind on one field, by length: ``{length: {text: {rule id: entry}}}``."""

    __slots__ = ("by_length", "lengths")

    def __init__(self) -> None:
        self.by_length: dict[int, dict[str, dict[str, _Entry]]] = {}
        self.lengths: list[int] = []

    def add(self, text: str, entry: _Entry) -> None:
        table = self.by_length.setdefault(len(text), {})
        table.setdefault(text, {})[entry.id] = entry
        self.lengths = sorted(self.by_length)

    def discard(self, text: str, rule_id: str) -> None:
        _drop(self.by_length, len(text), text, rule_id)
        self.lengths = sorted(self.by_length)


class RuleIndex:
    """Enabled rules by their necessary constraints. Not thread-safe: mutate from one thread."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        self._tables: dict[tuple[Path, ...], dict[Key, dict[str, _Entry]]] = {}
        self._texts: dict[tuple[Path, str], _Texts] = {}
        self._placed: dict[str, list[tuple[str, Any, Any]]] = {}
        self._always: dict[str, _Entry] = {}
        self._plan: _Plan | None = None
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
        """How many hash lookups one event costs for equalities (plus patterns and unindexed rules)."""
        return len(self._tables)

    def put(self, rule: Rule) -> None:
        """Add or replace a rule (disabled rules are kept out of matching)."""
        self.remove(rule.id)
        if not rule.enabled:
            return
        self._rules[rule.id] = rule
        self._plan = None
        entry = _Entry(rule)
        options = alternatives(rule.condition)
        if not options:
            self._always[rule.id] = entry
            return
        placed: list[tuple[str, Any, Any]] = []
        for need in options:
            if need.pattern is not None:
                where = (need.pattern.path, need.pattern.kind)
                self._texts.setdefault(where, _Texts()).add(need.pattern.text, entry)
                placed.append(("text", where, need.pattern.text))
                continue
            if any(not values for values in need.equal.values()):
                continue  # contradictory (type equals a and b): this alternative never holds
            signature = tuple(sorted(need.equal, key=repr))
            table = self._tables.setdefault(signature, {})
            for combo in itertools.product(*(sorted(need.equal[p], key=repr) for p in signature)):
                key = tuple(_untag(t) for t in combo) if len(combo) > 1 else _untag(combo[0])
                table.setdefault(key, {})[rule.id] = entry
                placed.append(("equal", signature, key))
        self._placed[rule.id] = placed

    def remove(self, rule_id: str) -> None:
        if self._rules.pop(rule_id, None) is None:
            return
        self._plan = None
        self._always.pop(rule_id, None)
        for kind, where, key in self._placed.pop(rule_id, []):
            if kind == "text":
                texts = self._texts.get(where)
                if texts is not None:
                    texts.discard(key, rule_id)
                    if not texts.by_length:
                        del self._texts[where]
                continue
            _drop(self._tables, where, key, rule_id)

    def candidates(self, ctx: Mapping[str, Any]) -> list[Rule]:
        """Rules that may match ``ctx`` (a superset of the matches), sorted by id."""
        found = self._candidates(ctx)
        return [found[k].rule for k in sorted(found)]

    def match(self, ctx: Mapping[str, Any]) -> list[Rule]:
        """Rules whose condition holds for ``ctx``, sorted by id."""
        found = self._candidates(ctx)
        if not found:
            return []
        if len(found) == 1:
            entry = next(iter(found.values()))
            return [entry.rule] if entry.evaluate(ctx) else []
        return [found[k].rule for k in sorted(found) if found[k].evaluate(ctx)]

    def _candidates(self, ctx: Mapping[str, Any]) -> Mapping[str, _Entry]:
        """Candidates by rule id (read only: it may be one of the index's own buckets)."""
        plan = self._plan or self._make_plan()
        values = [get(ctx) for get in plan.getters]  # each field once
        buckets: list[dict[str, _Entry]] = []
        for slot, table in plan.single:
            value = values[slot]
            bucket = table.get(value if type(value) is str else _key(value))
            if bucket:
                buckets.append(bucket)
        for slots, table in plan.tables:
            key = tuple([values[i] if type(values[i]) is str else _key(values[i]) for i in slots])
            bucket = table.get(key)
            if bucket:
                buckets.append(bucket)
        for slot, suffix, texts in plan.texts:
            value = values[slot]
            if not isinstance(value, str):
                continue
            size = len(value)
            by_length = texts.by_length
            for length in texts.lengths:
                if length > size:
                    break
                bucket = by_length[length].get(value[size - length :] if suffix else value[:length])
                if bucket:
                    buckets.append(bucket)
        if self._always:
            buckets.append(self._always)
        if len(buckets) < 2:
            return buckets[0] if buckets else _NONE
        found: dict[str, _Entry] = {}
        for bucket in buckets:
            found.update(bucket)
        return found

    def _make_plan(self) -> _Plan:
        paths: dict[Path, int] = {}
        for signature in self._tables:
            for path in signature:
                paths.setdefault(path, len(paths))
        for path, _ in self._texts:
            paths.setdefault(path, len(paths))
        self._plan = _Plan(
            getters=[getter(path) for path in paths],
            single=[(paths[sig[0]], table) for sig, table in self._tables.items() if len(sig) == 1],
            tables=[
                (tuple(paths[p] for p in sig), table) for sig, table in self._tables.items() if len(sig) > 1
            ],
            texts=[(paths[path], kind == "suffix", texts) for (path, kind), texts in self._texts.items()],
        )
        return self._plan


@dataclass(slots=True)
class _Plan:
    """What one event costs, rebuilt after a change: the fields to resolve and the lookups."""

    getters: list[Callable[[Any], Any]]
    single: list[tuple[int, dict[Key, dict[str, _Entry]]]]
    tables: list[tuple[tuple[int, ...], dict[Key, dict[str, _Entry]]]]
    texts: list[tuple[int, bool, _Texts]]


def _drop(tables: dict[Any, dict[Any, dict[str, _Entry]]], name: Any, key: Any, rule_id: str) -> None:
    """Remove a rule from ``tables[name][key]``, and the bucket and table once they are empty."""
    table = tables.get(name, {})
    bucket = table.get(key)
    if bucket is not None:
        bucket.pop(rule_id, None)
        if not bucket:
            del table[key]
    if not table:
        tables.pop(name, None)


def _untag(tagged: tuple[str, Any]) -> Key:
    """A table key: strings (most values) as themselves, other scalars type-tagged (``1``, ``1.0``
    and ``True`` never meet ``"1"``: a tuple never equals a string)."""
    return tagged[1] if tagged[0] == "s" else tagged


def _key(value: Any) -> Key:
    """The table key of an event's value (None for what no table holds: missing, lists, objects)."""
    if value is MISSING:
        return None
    tagged = scalar_key(value)
    return None if tagged is None else _untag(tagged)


def alternatives(condition: Condition) -> list[Need]:
    """Necessary constraints of which at least one alternative holds when ``condition`` does (a
    disjunction of conjunctions); an empty list means the rule cannot be indexed."""
    if isinstance(condition, Leaf):
        required = condition.required_equalities()
        if required:
            return [Need(equal=_bounded(required))]
        pattern = leaf_pattern(condition)
        return [Need(pattern=pattern)] if pattern is not None else []
    if isinstance(condition, All):
        required = condition.required_equalities()
        if required:
            return [Need(equal=_bounded(required))]
        for child in condition.children:
            found = alternatives(child)
            if found:
                return found
        return []
    if isinstance(condition, AnyOf):
        out: list[Need] = []
        for child in condition.children:
            found = alternatives(child)
            if not found:
                return []
            out.extend(found)
        return out
    return []


def leaf_pattern(leaf: Leaf) -> Pattern | None:
    """The text a leaf's value must start or end with, if its operator implies one."""
    if leaf.convert is not None or not isinstance(leaf.operand, str) or not leaf.operand:
        return None
    if leaf.operator in ("prefix", "suffix"):
        return Pattern(leaf.path, leaf.operator, leaf.operand)
    if leaf.operator == "regex":
        text = regex_prefix(leaf.operand)
        return Pattern(leaf.path, "prefix", text) if text else None
    return None


def regex_prefix(pattern: str) -> str:
    """The literal every match of ``pattern`` (search semantics) starts the string with, or "".

    Conservative: only ``^`` followed by literal characters (or escaped punctuation), no ``|``
    anywhere; a literal followed by a quantifier is not counted."""
    if not pattern.startswith("^") or "|" in pattern:
        return ""
    chars: list[str] = []
    pos = 1
    while pos < len(pattern):
        char = pattern[pos]
        if char == "\\":
            if pos + 1 >= len(pattern) or pattern[pos + 1].isalnum() or pattern[pos + 1] == "_":
                break  # \d, \w, \b, \1, ...: not a literal
            literal, step = pattern[pos + 1], 2
        elif char in _REGEX_META:
            break
        else:
            literal, step = char, 1
        following = pattern[pos + step : pos + step + 1]
        if following and following in _QUANTIFIERS:
            break  # the literal may repeat or be absent
        chars.append(literal)
        pos += step
    return "".join(chars)


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
