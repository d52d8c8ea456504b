"""The resource limits of the template sandbox: what a render may build, how many steps it may take.

Every operation a template can perform is bounded *before* it runs, so no single operation can hold
the interpreter for long or allocate much, and the render's budget is checked between operations:

- values: no string, list, dict or number bigger than :data:`MAX_VALUE` (characters, or items plus
  their contents, shared references counted each time) is built; ``*``, ``+``, ``**``, ``%``,
  ``str.format``, ``center``, ``indent``, ``replace``, ``join``, ``wordwrap``, ``format`` and
  ``regex_replace`` check the size of their result from their operands first; literals, ``~``
  operands and the results of every call and filter are checked too; integer arguments of calls and
  filters above :data:`MAX_VALUE` are refused (``(1).to_bytes(10**9)``, ``'x'|center(10**9)``);
- integers: at most :data:`MAX_INT_BITS` bits (``7**6000000`` is refused, not computed);
- steps: every loop iteration, call, filter, attribute or item lookup and operator spends one of
  :data:`MAX_STEPS`; output written anywhere (also inside macros and ``{% set %}`` blocks) counts
  against :data:`MAX_EMIT` characters;
- time: the render's deadline is checked at every step.

Loops, literals, ``~`` and output are instrumented by rewriting the parsed template (:func:`instrument`)
so that they pass through the guards above. A violation raises :class:`LimitExceeded`.
"""

from __future__ import annotations

import functools
import re
import string
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.runtime import Context, Undefined
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

MAX_VALUE = 256 * 1024
MAX_INT_BITS = 16_384
MAX_STEPS = 100_000
MAX_EMIT = 1024 * 1024
MAX_RANGE = 10_000

ITER, EMIT, VALUE = "whale_guard_iter", "whale_guard_emit", "whale_guard_value"


class LimitExceeded(Exception):
    """A template tried to exceed a sandbox limit; ``str()`` says which and where."""


class Timeout(LimitExceeded):
    """The render ran past its deadline."""


@dataclass
class Budget:
    """What one render (or one rule's renders) may still spend."""

    deadline: float
    timeout: float
    steps: int = MAX_STEPS
    emitted: int = 0


_local = threading.local()


def current() -> Budget | None:
    return getattr(_local, "budget", None)


def activate(budget: Budget | None) -> Budget | None:
    """Make ``budget`` the calling thread's; returns the one it replaces."""
    previous = current()
    _local.budget = budget
    return previous


def step() -> None:
    """Spend one step of the current render; raise when steps or time ran out."""
    budget = current()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise LimitExceeded(f"render took more than {MAX_STEPS} steps (loop iterations, calls, lookups)")
    if time.monotonic() > budget.deadline:
        raise Timeout(f"render took longer than {budget.timeout:g}s")


# ---------------------------------------------------------------------------------------- sizes
def size_of(value: Any, limit: int = MAX_VALUE) -> int:
    """About the length of ``str(value)``; stops counting once past ``limit`` (cost O(limit))."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, range):
            total += len(item)
        elif not isinstance(item, Undefined):
            total += 16
        if total > limit:
            return total
    return total


def check_size(value: Any, what: str) -> Any:
    if size_of(value) > MAX_VALUE:
        raise LimitExceeded(f"{what} would be larger than {MAX_VALUE} characters")
    return value


def _refuse_if(estimate: int, what: str) -> None:
    if estimate > MAX_VALUE:
        raise LimitExceeded(f"{what} would be larger than {MAX_VALUE} characters")


def _check_int_args(args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> None:
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE:
            raise LimitExceeded(f"{what}: argument {arg} is larger than {MAX_VALUE}")


# ------------------------------------------------------------------------------------ operators
def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _is_seq(value: Any) -> bool:
    return isinstance(value, str | list | tuple | bytes)


def binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` when its result would be too big to build."""
    step()
    if operator == "*":
        if _is_seq(left) and isinstance(right, int):
            _refuse_if(size_of(left) * max(right, 0), "repetition ('*')")
        elif _is_seq(right) and isinstance(left, int):
            _refuse_if(size_of(right) * max(left, 0), "repetition ('*')")
        elif isinstance(left, int) and isinstance(right, int):
            _bits(_int_bits(left) + _int_bits(right), "product ('*')")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _bits(_int_bits(left) * min(right, MAX_INT_BITS + 1), "power ('**')")
    elif operator == "+":
        if _is_seq(left) and _is_seq(right):
            _refuse_if(size_of(left) + size_of(right), "concatenation ('+')")
    elif operator == "%" and isinstance(left, str):
        percent_format_size(left, right)


def _bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise LimitExceeded(f"{what} would have more than {MAX_INT_BITS} bits")


_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")


def percent_format_size(fmt: str, args: Any) -> None:
    """Refuse ``fmt % args`` (also the ``format`` filter) whose widths would build a huge string."""
    fields = 0
    widths = 0
    for found in _PERCENT.finditer(fmt):
        width, precision, kind = found.groups()
        if "*" in (width, precision):
            raise LimitExceeded("'*' widths are not allowed in templates' % formatting")
        widths += int(width or 0) + int(precision or 0)
        fields += kind != "%"
    _refuse_if(len(fmt) + widths + fields * size_of(args), "% formatting")


def str_format_size(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse ``fmt.format(...)`` whose format specs (``{:>999999999}``) would build a huge string."""
    fields = 0
    widths = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _literal, name, spec, _conversion in parsed:
        if name is None:
            continue
        if spec and "{" in spec:
            raise LimitExceeded("nested fields in format specs are not allowed in templates")
        fields += 1
        widths += sum(int(n) for n in re.findall(r"\d+", spec or ""))
    _refuse_if(len(fmt) + widths + fields * (size_of(args) + size_of(kwargs)), "str.format")


# ------------------------------------------------------------------------------- calls, filters
def before_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Checks before a template calls ``obj``; returns the args to call it with."""
    step()
    name = getattr(obj, "__name__", "call")
    owner = getattr(obj, "__self__", None)
    if isinstance(obj, types.BuiltinMethodType) and isinstance(owner, str | bytes | int):
        _check_int_args(args, kwargs, f"{name}()")  # 'x'.ljust(10**9), (1).to_bytes(10**9)
    if isinstance(owner, str | bytes):
        if name == "join" and args:
            items = list(args[0])
            _refuse_if(size_of(items) + len(owner) * len(items), "join()")
            return (items, *args[1:])
        if name == "replace" and len(args) >= 2:
            _refuse_if(_replace_size(owner, args[0], args[1]), "replace()")
        if name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            _refuse_if(len(owner) + tabs * int(tab), "expandtabs()")
    return args


def _replace_size(text: Any, old: Any, new: Any) -> int:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return len(text)
    hits = len(text) + 1 if not old else text.count(old)
    return len(text) + hits * max(len(new) - len(old), 0)


def _filter_checks() -> dict[str, Callable[..., None]]:
    def center(value: Any, width: int = 80) -> None:
        _refuse_if(max(len(str(value)), width if isinstance(width, int) else 0), "center")

    def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
        text = str(s)
        per_line = width if isinstance(width, int) else len(str(width))
        _refuse_if(len(text) + (text.count("\n") + 1) * per_line, "indent")

    def replace(s: Any, old: Any, new: Any, count: int | None = None) -> None:
        _refuse_if(_replace_size(str(s), str(old), str(new)), "replace")

    def wordwrap(
        s: Any, width: int = 79, break_long_words: bool = True, wrapstring: Any = None, *_: Any
    ) -> None:
        text = str(s)
        lines = len(text) // max(int(width), 1) + text.count("\n") + 1
        _refuse_if(len(text) + lines * len(str(wrapstring or "\n")), "wordwrap")

    def format_(value: Any, *args: Any, **kwargs: Any) -> None:
        percent_format_size(str(value), kwargs or args)

    return {"center": center, "indent": indent, "replace": replace, "wordwrap": wordwrap, "format": format_}


_FILTER_CHECKS = _filter_checks()
_INT_BOUNDED = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice", "round"})


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a filter) with a step, its argument checks before, and a size check after."""
    check = _FILTER_CHECKS.get(name)
    passes_arg = _PassArg.from_obj(func) is not None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        step()
        rest = args[1:] if passes_arg else args
        if name in _INT_BOUNDED:
            _check_int_args(rest[1:], kwargs, f"filter {name}")
        if name == "join" and rest:
            items = list(rest[0])
            sep = rest[1] if len(rest) > 1 else kwargs.get("d", "")
            _refuse_if(size_of(items) + len(str(sep)) * len(items), "join")
            args = (*args[: len(args) - len(rest)], items, *rest[1:])
        elif check is not None and rest:
            check(*rest, **kwargs)
        return check_size(func(*args, **kwargs), f"the result of filter {name}")

    return guarded


# ---------------------------------------------------------------------------- instrumentation
class _Guarded:
    """An iterable whose every item spends a step (``{% for %}`` loops iterate through it)."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            step()
            yield item

    def __len__(self) -> int:
        return len(self._items)


@pass_context
def iter_guard(_ctx: Context, value: Any) -> Any:
    return value if isinstance(value, Undefined) else _Guarded(value)


@pass_context
def emit_guard(_ctx: Context, value: Any) -> Any:
    size = size_of(value)
    budget = current()
    if budget is not None:
        step()
        budget.emitted += size
        if budget.emitted > MAX_EMIT:
            raise LimitExceeded(f"render wrote more than {MAX_EMIT} characters (output, macros, set blocks)")
    elif size > MAX_EMIT:
        raise LimitExceeded(f"render wrote more than {MAX_EMIT} characters")
    return value


@pass_context
def value_guard(_ctx: Context, value: Any) -> Any:
    step()
    return check_size(value, "a value")


def _wrap(node: nodes.Expr, name: str) -> nodes.Expr:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Instrument(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _wrap(node.iter, ITER)  # type: ignore[arg-type]
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            _wrap(nodes.Const(child.data, lineno=child.lineno), EMIT)
            if isinstance(child, nodes.TemplateData)
            else _wrap(child, EMIT)  # type: ignore[arg-type]
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_wrap(child, VALUE) for child in node.nodes]
        return _wrap(node, VALUE)

    def _literal(self, node: nodes.List | nodes.Tuple | nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node, nodes.Tuple) and node.ctx != "load":
            return node
        return _wrap(node, VALUE)

    visit_List = visit_Tuple = visit_Dict = _literal


def instrument(tree: nodes.Template) -> nodes.Template:
    """Route ``tree``'s loops, output, literals and ``~`` through the guards (in place)."""
    result = _Instrument().visit(tree)
    assert isinstance(result, nodes.Template)
    return result


def bounded_range(*args: int) -> range:
    """``range`` of at most :data:`MAX_RANGE` items, refused before it is built."""
    step()
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise LimitExceeded(f"range() larger than {MAX_RANGE} items is not allowed")
    return result
