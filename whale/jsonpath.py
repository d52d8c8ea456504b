"""A small JSON path: ``$``, ``$.a.b``, ``$.items[0].id``, ``$['odd-key']`` (no wildcards, no filters).

Enough to point at a field of a webhook payload, a poll response or a CMDB record from configuration
(the adapters' mappings and pollers, the inventory's HTTP sources share it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from whale.errors import ConfigError

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class MappingError(ConfigError, code="invalid_mapping"):
    """A mapping, webhook, poller, subscription or inventory source definition is malformed; ``field``
    names where."""

    def __init__(self, message: str, *, field: str, source: str | None = None, **fields: Any) -> None:
        super().__init__(message, field=field, source=source, **fields)
        self.source = source


class Missing(LookupError):
    """The path does not exist in the document."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    steps: tuple[str | int, ...]

    def find(self, doc: Any) -> Any:
        """The value at the path; raises :class:`Missing` naming the first absent step."""
        cur = doc
        walked = "$"
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(cur, list) or step >= len(cur):
                    raise Missing(f"{walked}[{step}] does not exist")
                cur = cur[step]
                walked += f"[{step}]"
            else:
                if not isinstance(cur, dict) or step not in cur:
                    raise Missing(f"{walked}.{step} does not exist")
                cur = cur[step]
                walked += f".{step}"
        return cur

    def get(self, doc: Any, default: Any = None) -> Any:
        try:
            return self.find(doc)
        except Missing:
            return default


def compile_path(text: str, *, field: str = "path") -> JsonPath:
    """Parse ``text``; :class:`MappingError` names the field and the offending position."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise MappingError(f"{field}: a JSON path starts with '$', got {text!r}", field=field)
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise MappingError(f"{field}: cannot parse JSON path {text!r} at position {pos}", field=field)
        name, index, quoted, dquoted = m.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(name if name is not None else (quoted if quoted is not None else dquoted))
        pos = m.end()
    return JsonPath(text, tuple(steps))
