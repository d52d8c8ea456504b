"""Command aliases: chat phrases mapped to catalogued actions, as StackStorm's action aliases.

An alias's ``format`` is the phrase with ``{{ name }}`` placeholders (``{{ name = default }}`` gives
a default); the words match case-insensitively, a placeholder takes one word (or a quoted string),
and the last placeholder takes the rest of the line. The captured values, over the alias's fixed
``params``, are the action's params; the event center checks them against its params schema.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*([^}]*?)\s*)?\}\}")


@dataclass(frozen=True, slots=True)
class Alias:
    """``format`` -> ``action`` (in ``pool``, or wherever the catalogue has it) with ``params``."""

    format: str
    action: str
    pool: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _defaults: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pieces, defaults, last = [], {}, 0
        found = list(PLACEHOLDER.finditer(self.format))
        for index, match in enumerate(found):
            pieces.append(_words(self.format[last : match.start()]))
            name, default = match.group(1), match.group(2)
            if default is not None:
                defaults[name] = default.strip("\"'")
            value = r".+?" if index == len(found) - 1 else r"\"[^\"]*\"|'[^']*'|\S+"
            optional = "?" if default is not None else ""
            pieces.append(f"(?P<{name}>{value}){optional}")
            last = match.end()
        pieces.append(_words(self.format[last:]))
        object.__setattr__(self, "_pattern", re.compile("^" + "".join(pieces) + "$", re.IGNORECASE))
        object.__setattr__(self, "_defaults", defaults)

    def match(self, text: str) -> dict[str, Any] | None:
        """The params for ``text`` if it is this alias's phrase, else None."""
        found = self._pattern.match(" ".join(text.split()))
        if found is None:
            return None
        values = {k: _unquote(v) for k, v in found.groupdict().items() if v is not None}
        return {**self.params, **self._defaults, **values}


def _words(literal: str) -> str:
    words = literal.split()
    if not words:
        return r"\s*" if literal else ""
    lead = r"\s*" if literal[:1].isspace() else ""
    trail = r"\s*" if literal[-1:].isspace() else ""
    return lead + r"\s+".join(re.escape(w) for w in words) + trail


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        try:
            return shlex.split(value)[0]
        except ValueError:
            return value[1:-1]
    return value


def find(aliases: list[Alias], text: str) -> tuple[Alias, dict[str, Any]] | None:
    """The first alias whose phrase ``text`` is, with its params."""
    for alias in aliases:
        params = alias.match(text)
        if params is not None:
            return alias, params
    return None
