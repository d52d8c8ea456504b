"""The matching language shared by rules (rule engine, ``/rules`` API) and subscription filters.

A spec is JSON: combinators ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` (nestable)
and leaves ``{"field": "data.alerts[0].labels.instance", "<operator>": operand}`` with exactly one
operator. Field paths are dotted, with ``[n]`` array indexes and ``["key.with.dots"]`` keys.
Comparisons take numbers or RFC 3339 timestamps; ``regex`` uses search semantics and is compiled
once. Comparing mismatched types (or a missing field) is false, never an exception; a malformed
spec raises :class:`MatchError` naming where in the spec (``field``) and why.

A leaf may say ``"as": "number"`` (as Argo Events' data filters declare ``type: number``): a string
field holding a decimal number (Alertmanager annotations, query strings) is compared as that number;
any other string is a mismatch. Without it, the string ``"91"`` is not the number 91.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from whale.rules.operators import CONVERSIONS, OPERATORS, MatchError, as_number, compile_operator
from whale.rules.paths import MISSING, Path, getter, parse_path, resolve

COMBINATORS = ("all", "any", "not")
MAX_DEPTH = 32


# ---------------------------------------------------------------------- conditions
@dataclass(frozen=True, slots=True)
class Criterion:
    """One leaf of a spec as evaluated against a context (what :meth:`Condition.explain` returns)."""

    where: str
    field: str
    operator: str
    operand: Any
    value: Any
    passed: bool

    def describe(self) -> str:
        seen = "missing" if self.value is MISSING else json.dumps(self.value, default=str)[:200]
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"{verdict}: {self.field} {self.operator} {json.dumps(self.operand, default=str)} (seen {seen})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "field": self.field,
            "operator": self.operator,
            "operand": self.operand,
            "value": None if self.value is MISSING else self.value,
            "found": self.value is not MISSING,
            "passed": self.passed,
        }


class Condition:
    """A compiled spec. ``evaluate(ctx)`` is pure and never raises for any JSON-like context."""

    spec: Any

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def explain(self, ctx: Mapping[str, Any]) -> list[Criterion]:
        """Every leaf with the value it saw and whether it passed (no short-circuit)."""
        raise NotImplementedError

    def required_equalities(self) -> dict[Path, frozenset[tuple[str, Any]]]:
        """Field -> the set of scalar values it must equal for the condition to hold (index use)."""
        return {}


class Leaf(Condition):
    __slots__ = ("convert", "field", "get", "operand", "operator", "path", "spec", "test", "where")

    def __init__(
        self,
        spec: Any,
        where: str,
        field: str,
        operator: str,
        operand: Any,
        test: Callable[[Any], bool],
        convert: Callable[[Any], Any] | None = None,
    ) -> None:
        self.spec, self.where, self.field = spec, where, field
        self.operator, self.operand, self.test, self.convert = operator, operand, test, convert
        self.path = parse_path(field)
        self.get = getter(self.path)

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        try:
            value = self.get(ctx)
            if self.convert is None or value is MISSING:
                return self.test(value)
            return self.test(self.convert(value))
        except Exception:  # defensive: a context of unexpected shape is a non-match
            return False

    def explain(self, ctx: Mapping[str, Any]) -> list[Criterion]:
        value = resolve(ctx, self.path)
        return [Criterion(self.where, self.field, self.operator, self.operand, value, self.evaluate(ctx))]

    def required_equalities(self) -> dict[Path, frozenset[tuple[str, Any]]]:
        if self.convert is not None:  # the index holds raw values, not converted ones
            return {}
        equalities = OPERATORS[self.operator].equalities
        keys = equalities(self.operand) if equalities is not None else None
        return {self.path: keys} if keys is not None else {}


class All(Condition):
    def __init__(self, spec: Any, children: list[Condition]) -> None:
        self.spec, self.children = spec, children

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        return all(child.evaluate(ctx) for child in self.children)

    def explain(self, ctx: Mapping[str, Any]) -> list[Criterion]:
        return [c for child in self.children for c in child.explain(ctx)]

    def required_equalities(self) -> dict[Path, frozenset[tuple[str, Any]]]:
        out: dict[Path, frozenset[tuple[str, Any]]] = {}
        for child in self.children:
            for path, values in child.required_equalities().items():
                out[path] = out[path] & values if path in out else values
        return out


class AnyOf(Condition):
    def __init__(self, spec: Any, children: list[Condition]) -> None:
        self.spec, self.children = spec, children

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        return any(child.evaluate(ctx) for child in self.children)

    def explain(self, ctx: Mapping[str, Any]) -> list[Criterion]:
        return [c for child in self.children for c in child.explain(ctx)]

    def required_equalities(self) -> dict[Path, frozenset[tuple[str, Any]]]:
        if not self.children:
            return {}
        each = [child.required_equalities() for child in self.children]
        common = set(each[0]).intersection(*each[1:])
        return {path: frozenset().union(*(e[path] for e in each)) for path in common}


class Not(Condition):
    def __init__(self, spec: Any, child: Condition) -> None:
        self.spec, self.child = spec, child

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        return not self.child.evaluate(ctx)

    def explain(self, ctx: Mapping[str, Any]) -> list[Criterion]:
        return [
            Criterion(c.where, c.field, f"not({c.operator})", c.operand, c.value, not c.passed)
            for c in self.child.explain(ctx)
        ]


# ---------------------------------------------------------------------- compilation
def compile_match(spec: Any) -> Condition:
    """Compile a spec; raises :class:`MatchError` with the spec path of the first problem."""
    return _compile(spec, "", 0)


def _join(where: str, part: str) -> str:
    return f"{where}.{part}" if where and not part.startswith("[") else f"{where}{part}"


def _compile(spec: Any, where: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise MatchError(f"nesting deeper than {MAX_DEPTH} levels", field=where)
    if not isinstance(spec, Mapping):
        raise MatchError(
            f"a condition must be an object (leaf or all/any/not), got {type(spec).__name__}", field=where
        )
    combinators = [k for k in spec if k in COMBINATORS]
    if combinators:
        if len(spec) != 1:
            extra = sorted(k for k in spec if k != combinators[0])
            raise MatchError(
                f"{combinators[0]!r} must be the only key of its object; also found {extra}", field=where
            )
        name = combinators[0]
        inner = spec[name]
        here = _join(where, name)
        if name == "not":
            return Not(spec, _compile(inner, here, depth + 1))
        if not isinstance(inner, list) or not inner:
            raise MatchError(f"{name} needs a non-empty list of conditions", field=here)
        children = [_compile(c, f"{here}[{i}]", depth + 1) for i, c in enumerate(inner)]
        return All(spec, children) if name == "all" else AnyOf(spec, children)
    if "field" not in spec:
        keys = ", ".join(sorted(map(str, spec))) or "nothing"
        raise MatchError(
            f"a leaf needs 'field' and one operator (or use all/any/not); found {keys}", field=where
        )
    field = spec["field"]
    try:
        parse_path(field)
    except (ValueError, TypeError) as exc:
        raise MatchError(str(exc), field=_join(where, "field")) from None
    conversion = spec.get("as")
    if conversion is not None and conversion not in CONVERSIONS:
        raise MatchError(
            f"unknown conversion {conversion!r}; known: {', '.join(CONVERSIONS)}", field=_join(where, "as")
        )
    ops = [k for k in spec if k not in ("field", "as")]
    if not ops:
        raise MatchError(f"leaf on {field!r} has no operator; use one of {', '.join(OPERATORS)}", field=where)
    unknown = [k for k in ops if k not in OPERATORS]
    if unknown:
        raise MatchError(
            f"unknown operator {unknown[0]!r}; known: {', '.join(OPERATORS)}", field=_join(where, unknown[0])
        )
    if len(ops) > 1:
        raise MatchError(
            f"leaf on {field!r} has several operators ({', '.join(ops)}); combine leaves with 'all'",
            field=where,
        )
    op = ops[0]
    if conversion is not None and OPERATORS[op].text:
        raise MatchError(
            f"'as: {conversion}' does not apply to the text operator {op}", field=_join(where, "as")
        )
    test = compile_operator(op, spec[op], _join(where, op))
    return Leaf(spec, where or "(root)", field, op, spec[op], test, as_number if conversion else None)


def predicate(condition: Condition) -> Callable[[Mapping[str, Any]], bool]:
    """A plain function equal to ``condition.evaluate`` with the tree's attribute reads and method
    dispatch done once (what the rule index calls per candidate)."""
    if isinstance(condition, Leaf):
        get, test, convert = condition.get, condition.test, condition.convert
        if convert is not None:
            return condition.evaluate

        def leaf(ctx: Mapping[str, Any]) -> bool:
            try:
                return test(get(ctx))
            except Exception:  # as Leaf.evaluate: a context of unexpected shape is a non-match
                return False

        return leaf
    if isinstance(condition, Not):
        inner = predicate(condition.child)
        return lambda ctx: not inner(ctx)
    if isinstance(condition, All | AnyOf):
        parts = tuple(predicate(child) for child in condition.children)
        if isinstance(condition, All):
            if len(parts) == 2:
                first, second = parts
                return lambda ctx: bool(first(ctx) and second(ctx))
            if len(parts) == 3:
                first, second, third = parts
                return lambda ctx: bool(first(ctx) and second(ctx) and third(ctx))
            return lambda ctx: all(part(ctx) for part in parts)
        if len(parts) == 2:
            first, second = parts
            return lambda ctx: bool(first(ctx) or second(ctx))
        return lambda ctx: any(part(ctx) for part in parts)
    return condition.evaluate


def matches(spec: Any, ctx: Mapping[str, Any]) -> bool:
    """Compile and evaluate once (convenience for tests and one-off checks)."""
    return compile_match(spec).evaluate(ctx)


def leaves(condition: Condition) -> list[Leaf]:
    """Every leaf of a compiled condition (for static checks of field paths)."""
    if isinstance(condition, Leaf):
        return [condition]
    if isinstance(condition, All | AnyOf):
        return [leaf for child in condition.children for leaf in leaves(child)]
    if isinstance(condition, Not):
        return leaves(condition.child)
    return []
