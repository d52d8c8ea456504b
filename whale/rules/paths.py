"""Field paths and JSON values for the matching language: parsing ``data.alerts[0].labels``,
resolving a path in an event's context, timestamps, and JSON-typed equality."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from whale.cloudevent import CloudEvent, format_time

_SEGMENT = re.compile(r'([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|(\.)')
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""The value :func:`resolve` returns for a field the context does not have."""

Key = str | int
Path = tuple[Key, ...]


# ---------------------------------------------------------------------- field paths
@lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """``data.alerts[0].labels["a.b"]`` -> ``("data", "alerts", 0, "labels", "a.b")``."""
    if not isinstance(text, str) or not text:
        raise ValueError("field path must be a non-empty string")
    parts: list[Key] = []
    pos = 0
    expect_name = True
    while pos < len(text):
        found = _SEGMENT.match(text, pos)
        if found is None:
            raise ValueError(f"invalid field path {text!r} at position {pos}")
        name, index, quoted, dot = found.groups()
        if dot is not None:
            if expect_name:
                raise ValueError(f"invalid field path {text!r}: empty segment at position {pos}")
            expect_name = True
        elif name is not None:
            if not expect_name:
                raise ValueError(f"invalid field path {text!r}: missing '.' before {name!r}")
            parts.append(name)
            expect_name = False
        elif index is not None:
            if not parts:
                raise ValueError(f"invalid field path {text!r}: an index needs a field before it")
            parts.append(int(index))
            expect_name = False
        else:
            parts.append(json.loads(f'"{quoted}"'))
            expect_name = False
        pos = found.end()
    if expect_name:
        raise ValueError(f"invalid field path {text!r}: ends with '.'")
    return tuple(parts)


def resolve(ctx: Any, path: Path) -> Any:
    """The value at ``path`` in ``ctx``, or :data:`MISSING`."""
    cur = ctx
    for part in path:
        if isinstance(part, int):
            if isinstance(cur, list | tuple) and part < len(cur):
                cur = cur[part]
            else:
                return MISSING
        elif isinstance(cur, Mapping):
            cur = cur.get(part, MISSING)
            if cur is MISSING:
                return MISSING
        else:
            return MISSING
    return cur


def getter(path: Path) -> Callable[[Any], Any]:
    """A compiled :func:`resolve` for one path (same results): plain dicts and lists take a fast
    path without ABC checks; anything else falls back to :func:`resolve`."""
    if len(path) == 1 and isinstance(path[0], str):
        key = path[0]

        def get_top(ctx: Any) -> Any:
            if type(ctx) is dict:
                return ctx.get(key, MISSING)
            return resolve(ctx, path)

        return get_top
    if len(path) == 2 and isinstance(path[0], str) and isinstance(path[1], str):
        outer, inner = path

        def get_two(ctx: Any) -> Any:
            if type(ctx) is dict:
                cur = ctx.get(outer, MISSING)
                if type(cur) is dict:
                    return cur.get(inner, MISSING)
                if cur is MISSING:
                    return MISSING
            return resolve(ctx, path)

        return get_two
    if all(isinstance(part, str) for part in path):

        def get_keys(ctx: Any) -> Any:
            cur = ctx
            for part in path:
                if type(cur) is not dict:
                    return resolve(ctx, path)
                cur = cur.get(part, MISSING)
                if cur is MISSING:
                    return MISSING
            return cur

        return get_keys
    return lambda ctx: resolve(ctx, path)


def event_context(event: CloudEvent) -> dict[str, Any]:
    """What rules and templates see: context attributes (``time`` as RFC 3339 text), extensions at
    top level (as in the structured form) and ``data``."""
    ctx: dict[str, Any] = dict(event.extensions)
    ctx.update(
        id=event.id,
        source=event.source,
        type=event.type,
        specversion=event.specversion,
        datacontenttype=event.datacontenttype,
        dataschema=event.dataschema,
        subject=event.subject,
        time=format_time(event.time) if event.time else None,
        data=event.data,
    )
    for name in ("datacontenttype", "dataschema", "subject", "time"):
        if ctx[name] is None:
            del ctx[name]
    return ctx


# ---------------------------------------------------------------------- typed values
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@lru_cache(maxsize=8192)
def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 timestamp (with offset) as an aware datetime, else None."""
    if not _RFC3339.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None


def scalar_key(value: Any) -> tuple[str, Any] | None:
    """A hashable, type-tagged form of a JSON scalar (``1`` and ``True`` never collide), or None."""
    if value is None:
        return ("z", None)
    if isinstance(value, bool):
        return ("b", value)
    if _is_number(value):
        return ("n", value) if not (isinstance(value, float) and math.isnan(value)) else None
    if isinstance(value, str):
        return ("s", value)
    return None


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, bool is not a number, containers deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)
