"""The chat adapter's file: who is who, and the command aliases.

::

    users:                       # platform user id -> Whale identity name (its tokens give its role)
      slack:U2CERLKJA: ann
      wecom:zhangsan: bob
    aliases:
      - format: "clean logs on {{host}}"
        action: disk.clean       # a catalogued action or workflow
        pool: default            # optional: needed only when several pools offer it
        params: {path: /var/log} # fixed params (captured values override them)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from whale.errors import ConfigError
from whale_chat.aliases import PLACEHOLDER, Alias

PLATFORMS = ("slack", "wecom")


@dataclass(frozen=True, slots=True)
class ChatConfig:
    users: dict[str, str] = field(default_factory=dict)  # "<platform>:<user id>" -> identity name
    aliases: list[Alias] = field(default_factory=list)

    def identity(self, platform: str, user: str) -> str | None:
        return self.users.get(f"{platform}:{user}")

    @classmethod
    def load(cls, path: Path | None) -> ChatConfig:
        if path is None:
            return cls()
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the chat file {path}: {exc}", source=str(path)) from None
        return cls.from_document(doc or {}, source=str(path))

    @classmethod
    def from_document(cls, doc: Any, *, source: str = "<chat>") -> ChatConfig:
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: expected a mapping with users and aliases", field="", source=source)
        users = doc.get("users") or {}
        if not isinstance(users, dict):
            raise ConfigError(f"{source}: users must be a mapping", field="users", source=source)
        for key, name in users.items():
            platform, _, user = str(key).partition(":")
            if platform not in PLATFORMS or not user or not isinstance(name, str) or not name:
                raise ConfigError(
                    f"{source}: users.{key}: keys are '<slack|wecom>:<user id>', values identity names",
                    field=f"users.{key}",
                    source=source,
                )
        entries = doc.get("aliases") or []
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: aliases must be a list", field="aliases", source=source)
        return cls(
            users={str(k): str(v) for k, v in users.items()},
            aliases=[_alias(e, i, source) for i, e in enumerate(entries)],
        )


def _alias(entry: Any, index: int, source: str) -> Alias:
    where = f"aliases[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: {where} must be a mapping", field=where, source=source)
    fmt, action, params = entry.get("format"), entry.get("action"), entry.get("params") or {}
    if not isinstance(fmt, str) or not fmt.strip():
        raise ConfigError(
            f"{source}: {where}.format must be a phrase", field=f"{where}.format", source=source
        )
    if not isinstance(action, str) or not action:
        raise ConfigError(
            f"{source}: {where}.action must name an action", field=f"{where}.action", source=source
        )
    if not isinstance(params, dict):
        raise ConfigError(
            f"{source}: {where}.params must be a mapping", field=f"{where}.params", source=source
        )
    names = [m.group(1) for m in PLACEHOLDER.finditer(fmt)]
    if len(names) != len(set(names)):
        raise ConfigError(
            f"{source}: {where}.format repeats a placeholder", field=f"{where}.format", source=source
        )
    pool = entry.get("pool")
    return Alias(fmt.strip(), action, str(pool) if pool else None, dict(params))
