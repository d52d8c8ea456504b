"""Redaction at ingest: values under secret-looking keys of event data never reach a topic.

A key is secret-looking when its last word (camelCase and ``-`` split into ``_`` words, compared in
lower case) is one of the settings' names (password, token, authorization, api_key, secret, ...).
The value becomes ``***`` and the event gets the ``redacted`` extension listing the JSON pointers
(so readers know data was changed, and where). Per event type the names can be replaced, or
redaction turned off with an empty list. Works on JSON data only (bytes are left alone).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from whale.cloudevent import CloudEvent
from whale.settings import DEFAULT_REDACT_KEYS, WhaleSettings

REDACTED = "***"
EXTENSION = "redacted"
MAX_EXTENSION = 1000  # characters of the pointer list kept in the extension
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


@functools.lru_cache(maxsize=4096)  # the same few keys, event after event
def _words(key: str) -> str:
    return _CAMEL.sub(r"\1_\2", key).replace("-", "_").lower()


@functools.lru_cache(maxsize=8192)  # matching the pattern was ~5 µs per key (its leading ``.*_``)
def _secret(key: str, pattern: re.Pattern[str]) -> bool:
    """Whether ``key``'s words end with one of the names ``pattern`` was compiled from."""
    return pattern.match(_words(key)) is not None


def _any_secret(data: Any, pattern: re.Pattern[str]) -> bool:
    """Whether :meth:`Redactor.paths` would redact anything in ``data``."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and item is not None and _secret(key, pattern):
                    return True
                if isinstance(item, dict | list):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(item for item in value if isinstance(item, dict | list))
    return False


class Redactor:
    """Redacts the data of events; ``by_type`` replaces the key names for one event type."""

    def __init__(
        self, keys: Iterable[str] = DEFAULT_REDACT_KEYS, by_type: Mapping[str, Iterable[str]] | None = None
    ):
        self._default = self._compile(keys)
        self._by_type = {t: self._compile(k) for t, k in (by_type or {}).items()}

    @classmethod
    def from_settings(cls, settings: WhaleSettings) -> Redactor:
        return cls(settings.redact_keys, settings.redact_by_type)

    @staticmethod
    def _compile(keys: Iterable[str]) -> re.Pattern[str] | None:
        names = sorted({_words(k) for k in keys if k})
        if not names:
            return None
        return re.compile(r"^(?:.*_)?(?:" + "|".join(re.escape(n) for n in names) + r")$")

    def paths(self, data: Any, pattern: re.Pattern[str]) -> tuple[Any, list[str]]:
        """A redacted copy of ``data`` and the JSON pointers of what was redacted (iterative)."""
        found: list[str] = []
        root: list[Any] = [None]
        stack: list[tuple[Any, list[Any] | dict[Any, Any], Any, str]] = [(data, root, 0, "")]
        while stack:
            value, parent, slot, pointer = stack.pop()
            if isinstance(value, dict):
                copy: dict[Any, Any] = {}
                parent[slot] = copy
                for key, item in value.items():
                    where = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
                    if isinstance(key, str) and _secret(key, pattern) and item is not None:
                        copy[key] = REDACTED
                        found.append(where)
                    else:
                        stack.append((item, copy, key, where))
            elif isinstance(value, list):
                items: list[Any] = [None] * len(value)
                parent[slot] = items
                for index, item in enumerate(value):
                    stack.append((item, items, index, f"{pointer}/{index}"))
            else:
                parent[slot] = value
        return root[0], sorted(found)

    def apply(self, event: CloudEvent) -> CloudEvent:
        """``event`` with secret-looking data values replaced (the same object when none)."""
        pattern = self._by_type.get(event.type, self._default)
        if pattern is None or not isinstance(event.data, dict | list) or not _any_secret(event.data, pattern):
            return event  # the common case: found by a scan that copies nothing
        data, found = self.paths(event.data, pattern)
        if not found:
            return event
        listed = ",".join(found)
        if len(listed) > MAX_EXTENSION:
            listed = listed[: MAX_EXTENSION - 3] + "..."
        extensions = {**event.extensions, EXTENSION: listed}
        return event.model_copy(update={"data": data, "extensions": extensions})
