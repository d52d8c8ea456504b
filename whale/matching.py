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
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from whale.errors import ConfigError
from whale.paths import MISSING as MISSING
from whale.paths import Key as Key
from whale.paths import Path as Path
from whale.paths import _is_number
from whale.paths import event_context as event_context
from whale.paths import parse_path as parse_path
from whale.paths import parse_timestamp as parse_timestamp
from whale.paths import resolve as resolve
from whale.paths import same_value as same_value
from whale.paths import scalar_key as scalar_key

OPERATORS = (
    "equals",
    "not_equals",
    "greater",
    "greater_or_equal",
    "less",
    "less_or_equal",
    "regex",
    "in",
    "not_in",
    "exists",
    "not_exists",
    "prefix",
    "suffix",
    "contains",
)
COMBINATORS = ("all", "any", "not")
CONVERSIONS = ("number",)
_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
MAX_DEPTH = 32


class MatchError(ConfigError):
    """A match spec is malformed; ``field`` is the path inside the spec (``all[1].regex``)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message, field=field)
        self.field = field


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


def as_number(value: Any) -> Any:
    """``"as": "number"``: numbers stay, a decimal string becomes its float, other strings a non-number."""
    if isinstance(value, str):
        if _DECIMAL.match(value) is None:
            return _NOT_A_NUMBER
        number = float(value)
        return number if math.isfinite(number) else _NOT_A_NUMBER
    return value


class _NotANumber:
    """What a non-decimal string becomes under ``"as": "number"``: equal to nothing, ordered with nothing."""

    def __repr__(self) -> str:
        return "not a number"


_NOT_A_NUMBER = _NotANumber()


class Leaf(Condition):
    __slots__ = ("convert", "field", "operand", "operator", "path", "spec", "test", "where")

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

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        try:
            value = resolve(ctx, self.path)
            return self.test(self.convert(value) if self.convert and value is not MISSING else value)
        except Exception:  # defensive: a context of unexpected shape is a non-match
            return False

    def explain(self, ctx: Mapping[str, Any]) -> list[Criterion]:
        value = resolve(ctx, self.path)
        return [Criterion(self.where, self.field, self.operator, self.operand, value, self.evaluate(ctx))]

    def required_equalities(self) -> dict[Path, frozenset[tuple[str, Any]]]:
        if self.convert is not None:  # the index holds raw values, not converted ones
            return {}
        if self.operator == "equals":
            key = scalar_key(self.operand)
            return {self.path: frozenset([key])} if key is not None else {}
        if self.operator == "in":
            keys = [scalar_key(v) for v in self.operand]
            if all(k is not None for k in keys):
                return {self.path: frozenset(k for k in keys if k is not None)}
        return {}


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


# ---------------------------------------------------------------------- operator compilers
def _ordered(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    cmp: Callable[[Any, Any], bool] = {
        "greater": lambda a, b: a > b,
        "greater_or_equal": lambda a, b: a >= b,
        "less": lambda a, b: a < b,
        "less_or_equal": lambda a, b: a <= b,
    }[op]
    if _is_number(operand):
        if isinstance(operand, float) and not math.isfinite(operand):
            raise MatchError("operand must be a finite number", field=where)
        return lambda v: _is_number(v) and cmp(v, operand)
    if isinstance(operand, str):
        stamp = parse_timestamp(operand)
        if stamp is None:
            raise MatchError(
                f"operand {operand!r} is neither a number nor an RFC 3339 timestamp with offset",
                field=where,
            )

        def test(v: Any) -> bool:
            if isinstance(v, datetime):
                seen: datetime | None = v if v.tzinfo is not None else None
            else:
                seen = parse_timestamp(v) if isinstance(v, str) else None
            return seen is not None and cmp(seen, stamp)

        return test
    raise MatchError(
        f"operand must be a number or an RFC 3339 timestamp, got {type(operand).__name__}", field=where
    )


def _string_operand(op: str, operand: Any, where: str) -> str:
    if not isinstance(operand, str):
        raise MatchError(f"{op} needs a string operand, got {type(operand).__name__}", field=where)
    return operand


def _membership(operand: Any, where: str) -> Callable[[Any], bool]:
    if not isinstance(operand, list) or not operand:
        raise MatchError("needs a non-empty list of values", field=where)
    keys: set[tuple[str, Any]] = set()
    others: list[Any] = []
    for value in operand:
        key = scalar_key(value)
        if key is None:
            others.append(value)
        else:
            keys.add(key)

    def contains(v: Any) -> bool:
        key = scalar_key(v)
        if key is not None:
            return key in keys
        return any(same_value(v, other) for other in others)

    return contains


def _compile_operator(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if op == "equals":
        return lambda v: v is not MISSING and same_value(v, operand)
    if op == "not_equals":
        # mismatched types are "false", so not_equals needs a value of the operand's kind
        def differs(v: Any) -> bool:
            if v is MISSING:
                return False
            comparable = (_is_number(v) and _is_number(operand)) or (
                type(v) is type(operand) and not (_is_number(v) or _is_number(operand))
            )
            return comparable and not same_value(v, operand)

        return differs
    if op in ("greater", "greater_or_equal", "less", "less_or_equal"):
        return _ordered(op, operand, where)
    if op == "regex":
        pattern = _string_operand(op, operand, where)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise MatchError(f"invalid regular expression {pattern!r}: {exc}", field=where) from None
        return lambda v: isinstance(v, str) and compiled.search(v) is not None
    if op in ("in", "not_in"):
        member = _membership(operand, where)
        if op == "in":
            return lambda v: v is not MISSING and member(v)
        return lambda v: v is not MISSING and not member(v)
    if op in ("exists", "not_exists"):
        if not isinstance(operand, bool):
            raise MatchError(f"{op} takes true or false, got {json.dumps(operand)}", field=where)
        want = operand if op == "exists" else not operand
        return lambda v: (v is not MISSING) == want
    if op == "prefix":
        text = _string_operand(op, operand, where)
        return lambda v: isinstance(v, str) and v.startswith(text)
    if op == "suffix":
        text = _string_operand(op, operand, where)
        return lambda v: isinstance(v, str) and v.endswith(text)
    if op == "contains":

        def contains(v: Any) -> bool:
            if isinstance(v, str):
                return isinstance(operand, str) and operand in v
            if isinstance(v, list):
                return any(same_value(item, operand) for item in v)
            return False

        if isinstance(operand, dict | list):
            raise MatchError("contains needs a scalar operand (string, number, boolean)", field=where)
        return contains
    raise MatchError(f"unknown operator {op!r}; known: {', '.join(OPERATORS)}", field=where)


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
    if conversion is not None and op in ("regex", "prefix", "suffix"):
        raise MatchError(
            f"'as: {conversion}' does not apply to the text operator {op}", field=_join(where, "as")
        )
    test = _compile_operator(op, spec[op], _join(where, op))
    return Leaf(spec, where or "(root)", field, op, spec[op], test, as_number if conversion else None)


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
