"""The operators of the matching language: a registry keyed by name, each one's test compiled once per leaf.

An :class:`Operator` validates its operand and builds the test (``build``, raising :class:`MatchError`
naming where in the spec); ``text`` operators refuse ``"as": "number"``; ``equalities`` gives the
scalar values a field must equal (what the rule index keys on), for the operators that have them.

Also the ``"as": "number"`` conversion and :class:`MatchError`. :mod:`whale.rules.matching` builds
conditions from these; see it for the language.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from whale.errors import ConfigError
from whale.rules import regex
from whale.rules.paths import MISSING, _is_number, parse_timestamp, same_value, scalar_key

CONVERSIONS = ("number",)
_NUMBERS = (int, float)
_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


Test = Callable[[Any], bool]
Build = Callable[[Any, str], Test]


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator: ``build(operand, where)`` validates the operand and returns the test."""

    name: str
    build: Build
    text: bool = False  # a text operator: "as": "number" does not apply
    equalities: Callable[[Any], frozenset[tuple[str, Any]] | None] | None = None


class MatchError(ConfigError, code="invalid_match"):
    """A match spec is malformed; ``field`` is the path inside the spec (``all[1].regex``)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message, field=field)


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


# ---------------------------------------------------------------------- the operators
def _equals(operand: Any, where: str) -> Test:
    if type(operand) is str:  # what same_value does for a str operand, without its calls
        return lambda v: type(v) is str and v == operand
    return lambda v: v is not MISSING and same_value(v, operand)


def _not_equals(operand: Any, where: str) -> Test:
    # mismatched types are "false", so not_equals needs a value of the operand's kind
    def differs(v: Any) -> bool:
        if v is MISSING:
            return False
        comparable = (_is_number(v) and _is_number(operand)) or (
            type(v) is type(operand) and not (_is_number(v) or _is_number(operand))
        )
        return comparable and not same_value(v, operand)

    return differs


def _ordered(cmp: Callable[[Any, Any], bool]) -> Build:
    def build(operand: Any, where: str) -> Test:
        if _is_number(operand):
            if isinstance(operand, float) and not math.isfinite(operand):
                raise MatchError("operand must be a finite number", field=where)
            # the exact types first: no isinstance calls for the common JSON int and float
            return lambda v: (type(v) in _NUMBERS or _is_number(v)) and cmp(v, operand)
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

    return build


def _string_operand(op: str, operand: Any, where: str) -> str:
    if not isinstance(operand, str):
        raise MatchError(f"{op} needs a string operand, got {type(operand).__name__}", field=where)
    return operand


def _regex(operand: Any, where: str) -> Test:
    pattern = _string_operand("regex", operand, where)
    try:
        compiled = regex.compile(pattern)  # RE2: linear time on sender-controlled values
    except regex.RegexError as exc:
        raise MatchError(exc.message, field=where) from None
    return lambda v: isinstance(v, str) and compiled.search(v) is not None


def _membership(operand: Any, where: str) -> Test:
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
        if type(v) is str:  # the common case, without scalar_key's checks
            return ("s", v) in keys
        key = scalar_key(v)
        if key is not None:
            return key in keys
        return any(same_value(v, other) for other in others)

    return contains


def _in(operand: Any, where: str) -> Test:
    member = _membership(operand, where)
    return lambda v: v is not MISSING and member(v)


def _not_in(operand: Any, where: str) -> Test:
    member = _membership(operand, where)
    return lambda v: v is not MISSING and not member(v)


def _presence(op: str, present: bool) -> Build:
    def build(operand: Any, where: str) -> Test:
        if not isinstance(operand, bool):
            raise MatchError(f"{op} takes true or false, got {json.dumps(operand)}", field=where)
        want = operand if present else not operand
        return lambda v: (v is not MISSING) == want

    return build


def _prefix(operand: Any, where: str) -> Test:
    text = _string_operand("prefix", operand, where)
    return lambda v: isinstance(v, str) and v.startswith(text)


def _suffix(operand: Any, where: str) -> Test:
    text = _string_operand("suffix", operand, where)
    return lambda v: isinstance(v, str) and v.endswith(text)


def _contains(operand: Any, where: str) -> Test:
    if isinstance(operand, dict | list):
        raise MatchError("contains needs a scalar operand (string, number, boolean)", field=where)

    def contains(v: Any) -> bool:
        if isinstance(v, str):
            return isinstance(operand, str) and operand in v
        if isinstance(v, list):
            return any(same_value(item, operand) for item in v)
        return False

    return contains


def _equals_keys(operand: Any) -> frozenset[tuple[str, Any]] | None:
    key = scalar_key(operand)
    return frozenset([key]) if key is not None else None


def _in_keys(operand: Any) -> frozenset[tuple[str, Any]] | None:
    keys = [scalar_key(v) for v in operand]
    return frozenset(k for k in keys if k is not None) if all(k is not None for k in keys) else None


def _registry(*ops: Operator) -> dict[str, Operator]:
    return {op.name: op for op in ops}


OPERATORS: Mapping[str, Operator] = MappingProxyType(
    _registry(
        Operator("equals", _equals, equalities=_equals_keys),
        Operator("not_equals", _not_equals),
        Operator("greater", _ordered(operator.gt)),
        Operator("greater_or_equal", _ordered(operator.ge)),
        Operator("less", _ordered(operator.lt)),
        Operator("less_or_equal", _ordered(operator.le)),
        Operator("regex", _regex, text=True),
        Operator("in", _in, equalities=_in_keys),
        Operator("not_in", _not_in),
        Operator("exists", _presence("exists", present=True)),
        Operator("not_exists", _presence("not_exists", present=False)),
        Operator("prefix", _prefix, text=True),
        Operator("suffix", _suffix, text=True),
        Operator("contains", _contains),
    )
)
"""Every operator of the language by name, in the order error messages list them."""


def compile_operator(op: str, operand: Any, where: str) -> Test:
    """The test of one operator with its operand; raises :class:`MatchError` naming ``where``."""
    found = OPERATORS.get(op)
    if found is None:
        raise MatchError(f"unknown operator {op!r}; known: {', '.join(OPERATORS)}", field=where)
    return found.build(operand, where)
