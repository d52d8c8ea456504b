"""What an event's text and data may hold: no unpaired surrogates, no control characters in
attributes, data nested at most so deep (checked iteratively: never a RecursionError)."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # data a sender may nest (refused at the edges: HTTP ingest, adapters)
MAX_NESTING = 128  # data any event may nest (room for Whale's own wrappers, e.g. to-do items)
READ_DEPTH = 200  # what read APIs show as JSON (pydantic serialises at most ~250 levels)
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str, check_circular=False)


def text_problem(value: str, *, controls: bool = True) -> str | None:
    """Why ``value`` cannot travel in a Kafka header or to another CloudEvents SDK, or None."""
    if _UNSAFE.search(value) is None:  # one C-level scan for the usual, clean case
        return None
    if _SURROGATE.search(value):
        return "must be valid Unicode (it holds an unpaired surrogate)"
    if controls and _CONTROL.search(value):
        return "must not contain control characters"
    return None


def _pointer(path: list[str | int]) -> str:
    text = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path) or "/"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def data_problem(data: Any, max_depth: int = MAX_NESTING) -> tuple[str, str] | None:
    """(JSON pointer, why) of the first part of ``data`` no reader can safely handle: nesting deeper
    than ``max_depth`` or a string with an unpaired surrogate. Iterative: never a RecursionError."""
    if _data_fine(data, max_depth):
        return None  # the fast pass (every event goes through it); the pointer is found only on failure
    return _locate(data, max_depth)


def _bad_text(value: str) -> bool:
    return not value.isascii() and _SURROGATE.search(value) is not None


def _data_fine(data: Any, max_depth: int) -> bool:
    try:  # the C encoder meets every string once: an unpaired surrogate cannot be encoded
        text = _ENCODER.encode(data)
        text.encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    if text.count("{") + text.count("[") < max_depth:
        return True  # fewer brackets (strings' included) than levels allowed: no need to walk
    return depth_within(data, max_depth)


def _locate(data: Any, max_depth: int) -> tuple[str, str] | None:
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _bad_text(value):
                return _pointer(path), "string is not valid Unicode (it holds an unpaired surrogate)"
        elif isinstance(value, dict | list):
            if len(path) >= max_depth:
                return _pointer(path), f"data is nested deeper than {max_depth} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _bad_text(key):
                    return _pointer([*path, key]), "key is not valid Unicode (it holds an unpaired surrogate)"
                stack.append((item, [*path, key]))
    return None


def depth_within(value: Any, max_depth: int) -> bool:
    """True when ``value`` is nested at most ``max_depth`` levels (iterative, containers only)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        if depth >= max_depth:
            return False
        below: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below.extend(item for item in items if isinstance(item, dict | list))
        level = below
        depth += 1
    return True
