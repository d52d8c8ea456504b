"""The sandboxed template DSL (Jinja2) that renders parameters from events and results.

Templates run in an immutable sandbox: no attribute starting with ``_``, no imports, no
``str.format`` tricks, strict undefined (a missing field is an error, not an empty string).
Resources are bounded before they are spent (:mod:`whale.rules.limits`: value sizes, integer
bits, ``range``, steps, written output, a deadline checked at every step) and regular expressions
run on RE2 in linear time (:mod:`whale.rules.regex`); a violation is a :class:`TemplateLimitError`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from whale.errors import WhaleError
from whale.rules import limits, regex

MAX_OUTPUT = 64 * 1024
MAX_RANGE = limits.MAX_RANGE
DEFAULT_TIMEOUT = 1.0
_NATIVE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.S)
_REGEX_FILTERS = ("regex_replace", "regex_search")


class TemplateError(WhaleError, status=400, code="invalid_template"):
    """A template failed to compile or render; ``reason`` says why, ``template`` shows which."""

    def __init__(self, message: str, *, template: str = "", field: str | None = None) -> None:
        super().__init__(message, template=template, field=field)
        self.template = template


class TemplateLimitError(TemplateError):
    """A render hit a sandbox limit (time, steps, value size, output, regex): refused, not retried."""


class WhaleSandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox whose operations spend the render's budget and are size-checked first."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return limits.instrument(super()._parse(source, name, filename))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits.binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        limits.step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        limits.step()
        return super().getitem(obj, argument)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = limits.before_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return limits.check_size(result, f"the result of {getattr(__obj, '__name__', 'a call')}()")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__
        inner = wrapped

        def checked(*args: Any, **kwargs: Any) -> str:
            if value.__name__ == "format_map" and args:
                limits.str_format_size(fmt, (), args[0])
            else:
                limits.str_format_size(fmt, args, kwargs)
            return inner(*args, **kwargs)

        return checked


def _regex_replace(value: Any, pattern: str, replacement: str, count: int = 0) -> str:
    compiled = regex.compile(pattern)
    try:
        return compiled.sub(
            replacement, str(value), count=count, max_size=limits.MAX_VALUE, on_match=limits.step
        )
    except regex.SizeExceeded as exc:
        raise limits.LimitExceeded(str(exc)) from None


def _regex_search(value: Any, pattern: str, group: int | str = 0) -> str | None:
    found = regex.compile(pattern).search(str(value))
    return found.group(group) if found else None


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, sort_keys=True)


def make_environment() -> WhaleSandbox:
    """A fresh sandbox with Whale's filters (default, tojson, regex_replace, regex_search, lower, ...)."""
    env = WhaleSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters["regex_replace"] = _regex_replace
    env.filters["regex_search"] = _regex_search
    env.filters["tojson"] = _tojson
    env.filters["fromjson"] = json.loads
    env.filters = {name: limits.guard_filter(name, f) for name, f in env.filters.items()}
    env.filters.update({limits.ITER: limits.iter_guard, limits.EMIT: limits.emit_guard})
    env.filters[limits.VALUE] = limits.value_guard
    env.globals = {"range": limits.bounded_range, "dict": dict}
    return env


_ENV = make_environment()


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    """Templates are compiled once per distinct source (compiling costs far more than rendering)."""
    return _ENV.from_string(source)


def check(source: str) -> None:
    """Raise :class:`TemplateError` when ``source`` does not compile, or a regex filter's constant
    pattern is one RE2 refuses (backreference, lookaround, bad syntax)."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error at line {exc.lineno}: {exc.message}", template=source
        ) from None
    for node in tree.find_all(nodes.Filter):
        if node.name in _REGEX_FILTERS and node.args and isinstance(node.args[0], nodes.Const):
            try:
                regex.check(node.args[0].value)
            except regex.RegexError as exc:
                raise TemplateError(f"{node.name}: {exc.message}", template=source) from None


def referenced_names(source: str) -> set[str]:
    """Dotted paths (``data.labels.instance``) a template reads, for static checks."""
    tree = _ENV.parse(source)
    found: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        parts: list[str] = []
        cur: nodes.Node = node
        while isinstance(cur, nodes.Getattr):
            parts.append(cur.attr)
            cur = cur.node
        if isinstance(cur, nodes.Name):
            parts.append(cur.name)
            found.add(".".join(reversed(parts)))
    return {name for name in found if not any(other.startswith(name + ".") for other in found)}


@contextmanager
def budget(timeout: float = DEFAULT_TIMEOUT) -> Iterator[limits.Budget]:
    """One budget (deadline, steps, written output) shared by every render in the block, e.g. all
    the templates of one rule: the cap is on the rule, not on each string."""
    active = limits.Budget(deadline=time.monotonic() + timeout, timeout=timeout)
    previous = limits.activate(active)
    try:
        yield active
    finally:
        limits.activate(previous)


def render(
    source: str, context: Mapping[str, Any], *, max_output: int = MAX_OUTPUT, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """Render ``source`` with ``context`` within the enclosing :func:`budget` (or a new one of
    ``timeout`` seconds). Raises :class:`TemplateError` with the reason."""
    if limits.current() is None:
        with budget(timeout):
            return _render(source, context, max_output)
    return _render(source, context, max_output)


def _render(source: str, context: Mapping[str, Any], max_output: int) -> str:
    try:
        template = _compiled(source)
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > max_output:
                raise TemplateLimitError(f"rendered output exceeds {max_output} characters", template=source)
            chunks.append(chunk)
        return "".join(chunks)
    except TemplateError:
        raise
    except limits.LimitExceeded as exc:
        raise TemplateLimitError(str(exc), template=source) from None
    except regex.RegexError as exc:
        raise TemplateLimitError(exc.message, template=source) from None
    except RecursionError:
        raise TemplateLimitError("render failed: recursion too deep", template=source) from None
    except MemoryError:
        raise TemplateLimitError("render failed: out of memory", template=source) from None
    except SecurityError as exc:
        raise TemplateError(f"blocked by the sandbox: {exc}", template=source) from None
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error at line {exc.lineno}: {exc.message}", template=source
        ) from None
    except JinjaTemplateError as exc:
        raise TemplateError(f"render failed: {exc}", template=source) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, re.error) as exc:
        raise TemplateError(f"render failed: {type(exc).__name__}: {exc}", template=source) from None


def render_value(value: Any, context: Mapping[str, Any], *, path: str = "", **bounds: Any) -> Any:
    """Render every string inside ``value`` (dicts and lists walked). A string that is exactly one
    ``{{ expression }}`` keeps the expression's native type (number, list, dict, bool)."""
    if isinstance(value, str):
        match = _NATIVE.match(value)
        try:
            if match and "{{" not in match.group("expr") and "{%" not in value:
                return _render_native(match.group("expr"), value, context, path, **bounds)
            return render(value, context, **bounds)
        except TemplateError as exc:
            if exc.field is not None:
                raise
            raise type(exc)(f"{path or 'template'}: {exc.message}", template=value, field=path) from None
    if isinstance(value, Mapping):
        return {
            k: render_value(v, context, path=f"{path}.{k}" if path else str(k), **bounds)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render_value(v, context, path=f"{path}[{i}]", **bounds) for i, v in enumerate(value)]
    return value


def _render_native(expr: str, source: str, context: Mapping[str, Any], path: str, **bounds: Any) -> Any:
    text = render("{{ (" + expr + ") | tojson }}", context, **bounds) if expr.strip() else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise TemplateError(
            f"{path or 'template'}: result is not JSON-serialisable", template=source, field=path
        ) from None
