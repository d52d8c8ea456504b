"""The one regular-expression engine of user-written patterns: rule ``regex`` and template filters.

Patterns run on RE2 (``google-re2``), whose matching time is linear in the input whatever the
pattern, so ``(a+)+$``, ``(a|a)*$`` or ``(.*a){20}`` cannot stall a worker. RE2 is the syntax of Go's
``regexp`` (Argo Events, Prometheus): backreferences (``\\1``) and lookaround (``(?=``, ``(?<!``) are
not supported and such a pattern is refused with :class:`RegexError` when the rule or template is
validated; ``\\d``, ``\\w`` and ``\\b`` are ASCII. Compiled patterns are cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from whale.errors import ConfigError

MAX_PATTERN = 4096  # characters of one pattern
MAX_MEMORY = 8 << 20  # bytes of RE2 program and DFA cache per pattern
_GROUP_REF = re2.compile(r"\\(?:([1-9][0-9]?)|g<([A-Za-z_][A-Za-z0-9_]*|[0-9]+)>|(.))", re2.Options())


class RegexError(ConfigError):
    """A pattern RE2 refuses (syntax, backreference, lookaround, too large); ``pattern`` and ``reason``."""

    def __init__(self, message: str, *, pattern: str, reason: str) -> None:
        super().__init__(message, pattern=pattern, reason=reason)
        self.pattern = pattern
        self.reason = reason


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_MEMORY
    return options


class SizeExceeded(ValueError):
    """:meth:`Pattern.sub` would build a result larger than its ``max_size``."""


@dataclass(frozen=True, slots=True)
class Match:
    """What a search found: the whole match and its groups (``None`` for a group that did not take part)."""

    _match: Any

    def group(self, index: int | str = 0) -> str | None:
        try:
            value = self._match.group(index)
        except (IndexError, KeyError):
            raise IndexError(f"no such group: {index!r}") from None
        return value if isinstance(value, str) else None

    def start(self) -> int:
        return int(self._match.start())

    def end(self) -> int:
        return int(self._match.end())


class Pattern:
    """A compiled pattern; :meth:`search` and :meth:`sub` are linear in the text."""

    __slots__ = ("_regexp", "pattern")

    def __init__(self, pattern: str, regexp: Any) -> None:
        self.pattern = pattern
        self._regexp = regexp

    def search(self, text: str) -> Match | None:
        found = self._regexp.search(text)
        return Match(found) if found is not None else None

    def sub(
        self,
        replacement: str,
        text: str,
        *,
        count: int = 0,
        max_size: int | None = None,
        on_match: Callable[[], None] | None = None,
    ) -> str:
        """``re.sub`` with ``\\1``, ``\\g<name>`` and ``\\n``/``\\t``/``\\\\`` in ``replacement``.

        ``max_size`` refuses (:class:`SizeExceeded`) a result that would grow past it before it is
        built; ``on_match`` is called for every match (a render uses it to check its budget)."""
        pieces = _template(replacement)
        out: list[str] = []
        size = 0
        end = 0
        for done, found in enumerate(self._regexp.finditer(text)):
            if count and done >= count:
                break
            if on_match is not None:
                on_match()
            start, stop = found.span()
            parts = [text[end:start]]
            for kind, value in pieces:
                if kind == "text":
                    parts.append(value)
                else:
                    group = found.group(int(value) if value.isdigit() else value)
                    parts.append(group if isinstance(group, str) else "")
            size += sum(len(p) for p in parts)
            if max_size is not None and size + len(text) - stop > max_size:
                raise SizeExceeded(f"regex_replace result would exceed {max_size} characters")
            out.extend(parts)
            end = stop
        out.append(text[end:])
        return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "f": "\f", "v": "\v", "a": "\a", "0": "\0"}


@lru_cache(maxsize=256)
def _template(replacement: str) -> tuple[tuple[str, str], ...]:
    """``replacement`` as ("text", s) and ("group", ref) pieces, parsed once."""
    pieces: list[tuple[str, str]] = []
    end = 0
    for found in _GROUP_REF.finditer(replacement):
        start, stop = found.span()
        literal = replacement[end:start]
        number, name, escaped = found.group(1), found.group(2), found.group(3)
        if number or name:
            pieces.append(("text", literal))
            pieces.append(("group", number or name))
        else:
            pieces.append(("text", literal + _ESCAPES.get(escaped, "\\" + escaped)))
        end = stop
    pieces.append(("text", replacement[end:]))
    return tuple(p for p in pieces if p[1] or p[0] == "group")


@lru_cache(maxsize=1024)
def compile(pattern: str) -> Pattern:
    """The compiled ``pattern``; raises :class:`RegexError` with RE2's reason."""
    if not isinstance(pattern, str):
        raise RegexError(
            f"a pattern must be a string, got {type(pattern).__name__}", pattern=str(pattern), reason="type"
        )
    if len(pattern) > MAX_PATTERN:
        raise RegexError(
            f"pattern is longer than {MAX_PATTERN} characters", pattern=pattern[:64], reason="too long"
        )
    try:
        regexp = re2.compile(pattern, _options())
    except re2.error as exc:
        reason = (
            exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        )
        hint = ""
        if "invalid escape sequence: \\" in reason and reason[-1:].isdigit():
            hint = " (backreferences are not supported: patterns run on RE2, in linear time)"
        elif "invalid perl operator: (?" in reason and any(s in reason for s in ("(?=", "(?!", "(?<")):
            hint = " (lookahead and lookbehind are not supported: patterns run on RE2, in linear time)"
        elif "invalid repetition size" in reason or "pattern too large" in reason:
            hint = " (RE2 allows at most {1000} repetitions and a bounded program size)"
        raise RegexError(
            f"invalid regular expression {pattern!r}: {reason}{hint}", pattern=pattern, reason=reason
        ) from None
    return Pattern(pattern, regexp)


def check(pattern: str) -> None:
    """Raise :class:`RegexError` when ``pattern`` would be refused at run time."""
    compile(pattern)
