"""The sandboxed template DSL (Jinja2) that renders parameters from events and results.

Templates run in an immutable sandbox: no attribute starting with ``_``, no imports, no
``str.format`` tricks, strict undefined (a missing field is an error, not an empty string), bounded
``range``, bounded output size and a render deadline checked on every attribute access and call.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from whale.errors import WhaleError

MAX_OUTPUT = 64 * 1024
MAX_RANGE = 10_000
DEFAULT_TIMEOUT = 1.0
_NATIVE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.S)


class TemplateError(WhaleError, status=400, code="invalid_template"):
    """A template failed to compile or render; ``reason`` says why, ``template`` shows which."""

    def __init__(self, message: str, *, template: str = "", field: str | None = None) -> None:
        super().__init__(message, template=template, field=field)
        self.template = template


class _Deadline(Exception):
    pass


class WhaleSandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox with a per-render deadline (per thread) and a bounded ``range``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._local = threading.local()

    @property
    def deadline(self) -> float:
        return float(getattr(self._local, "deadline", 0.0))

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._local.deadline = value

    def _check(self) -> None:
        deadline = self.deadline
        if deadline and time.monotonic() > deadline:
            raise _Deadline

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._check()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self._check()
        return super().getitem(obj, argument)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().call(__context, __obj, *args, **kwargs)


def _regex_replace(value: Any, pattern: str, replacement: str, count: int = 0) -> str:
    return re.sub(pattern, replacement, str(value), count=count)


def _regex_search(value: Any, pattern: str, group: int = 0) -> str | None:
    found = re.search(pattern, str(value))
    return found.group(group) if found else None


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() larger than {MAX_RANGE} items is not allowed")
    return result


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, sort_keys=True)


def make_environment() -> WhaleSandbox:
    """A fresh sandbox with Whale's filters (default, tojson, regex_replace, regex_search, lower, ...)."""
    env = WhaleSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters["regex_replace"] = _regex_replace
    env.filters["regex_search"] = _regex_search
    env.filters["tojson"] = _tojson
    env.filters["fromjson"] = json.loads
    env.globals = {"range": _bounded_range, "dict": dict}
    return env


_ENV = make_environment()


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    """Templates are compiled once per distinct source (compiling costs far more than rendering)."""
    return _ENV.from_string(source)


def check(source: str) -> None:
    """Raise :class:`TemplateError` when ``source`` does not compile."""
    try:
        _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error at line {exc.lineno}: {exc.message}", template=source
        ) from None


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


def render(
    source: str, context: Mapping[str, Any], *, max_output: int = MAX_OUTPUT, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """Render ``source`` with ``context``. Raises :class:`TemplateError` with the reason."""
    env = _ENV
    previous = env.deadline
    env.deadline = time.monotonic() + timeout
    try:
        template = _compiled(source)
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > max_output:
                raise TemplateError(f"rendered output exceeds {max_output} characters", template=source)
            chunks.append(chunk)
        return "".join(chunks)
    except TemplateError:
        raise
    except _Deadline:
        raise TemplateError(f"render took longer than {timeout}s", template=source) from None
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
    finally:
        env.deadline = previous


def render_value(value: Any, context: Mapping[str, Any], *, path: str = "", **limits: Any) -> Any:
    """Render every string inside ``value`` (dicts and lists walked). A string that is exactly one
    ``{{ expression }}`` keeps the expression's native type (number, list, dict, bool)."""
    if isinstance(value, str):
        match = _NATIVE.match(value)
        try:
            if match and "{{" not in match.group("expr") and "{%" not in value:
                return _render_native(match.group("expr"), value, context, path, **limits)
            return render(value, context, **limits)
        except TemplateError as exc:
            if exc.field is not None:
                raise
            raise TemplateError(f"{path or 'template'}: {exc.message}", template=value, field=path) from None
    if isinstance(value, Mapping):
        return {
            k: render_value(v, context, path=f"{path}.{k}" if path else str(k), **limits)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render_value(v, context, path=f"{path}[{i}]", **limits) for i, v in enumerate(value)]
    return value


def _render_native(expr: str, source: str, context: Mapping[str, Any], path: str, **limits: Any) -> Any:
    text = render("{{ (" + expr + ") | tojson }}", context, **limits) if expr.strip() else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise TemplateError(
            f"{path or 'template'}: result is not JSON-serialisable", template=source, field=path
        ) from None
