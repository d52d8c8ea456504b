"""What a chat line asks: a verb on an approval or a to-do, an alias, or help."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from whale_chat.aliases import Alias, find

Verb = Literal["approve", "deny", "claim", "resolve", "run", "help"]
ID_VERBS = ("approve", "deny", "claim", "resolve")
HELP = (
    "Commands: approve <approval id> [comment] | deny <approval id> [comment] | "
    "claim <to-do id> [comment] | resolve <to-do id> [comment] | help"
)


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    target: str = ""  # the approval or to-do id, or the action an alias runs
    comment: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    pool: str | None = None


class Unknown(ValueError):
    """The line is no command and no alias (the answer explains what is)."""


def parse(text: str, aliases: list[Alias]) -> Command:
    """Read one line: ``approve <id> [comment]`` and the like, else the first matching alias."""
    words = text.strip().split(None, 2)
    if not words or words[0].lower() == "help":
        return Command("help")
    verb = words[0].lower()
    if verb in ID_VERBS:
        if len(words) < 2:
            raise Unknown(f"{verb} needs an id: {verb} <id> [comment]")
        comment = words[2].strip() if len(words) > 2 else None
        return Command(verb, words[1], comment or None)  # type: ignore[arg-type]
    found = find(aliases, text)
    if found is None:
        raise Unknown(f"not a command or alias: {text.strip()[:200]!r}. {HELP}")
    alias, params = found
    return Command("run", alias.action, params=params, pool=alias.pool)
