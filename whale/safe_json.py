"""JSON that never fails on hostile text: an unpaired surrogate (``"\\ud800"`` in a request) is
written escaped instead of raising ``UnicodeEncodeError`` (a 500) while an answer is rendered
(``whale.web.errors.SafeJSONResponse`` renders every error answer through :func:`safe`)."""

from __future__ import annotations

from typing import Any


def safe_text(text: str) -> str:
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe(value: Any) -> Any:
    """A copy of a JSON-like value whose strings (keys too) can all be encoded as UTF-8."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe(k): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    return value
