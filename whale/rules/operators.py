"""The operators of the matching language: each one's test, compiled once per leaf.

Also the ``"as": "number"`` conversion and :class:`MatchError`. :mod:`whale.rules.matching` builds
conditions from these; see it for the language.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from whale.errors import ConfigError
from whale.rules import regex
from whale.rules.paths import MISSING, _is_number, parse_timestamp, same_value, scalar_key

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
CONVERSIONS = ("number",)
_NUMBERS = (int, float)
_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


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


def _ordered(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    cmp: Callable[[Any, Any], bool] = {
        "greater": operator.gt,
        "greater_or_equal": operator.ge,
        "less": operator.lt,
        "less_or_equal": operator.le,
    }[op]
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
        if type(v) is str:  # the common case, without scalar_key's checks
            return ("s", v) in keys
        key = scalar_key(v)
        if key is not None:
            return key in keys
        return any(same_value(v, other) for other in others)

    return contains


def compile_operator(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    """The test of one operator with its operand; raises :class:`MatchError` naming ``where``."""
    if op == "equals":
        if type(operand) is str:  # what same_value does for a str operand, without its calls
            return lambda v: type(v) is str and v == operand
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
            compiled = regex.compile(pattern)  # RE2: linear time on sender-controlled values
        except regex.RegexError as exc:
            raise MatchError(exc.message, field=where) from None
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
