"""Personal API tokens: ``wht_<id>.<secret>``, only the sha256 stored, expiring and revocable.

They live on the compacted topic ``whale.tokens`` (key = token id, a ``whale.token.saved`` event
whose data is the record without the token). A tokens file would have to be copied to every replica
and reloaded; a compacted topic reaches every event-center, dispatcher and adapter replica within
the follow latency, so a revocation takes effect everywhere at once, and it survives restarts.
Revoked records are kept (``revoked: true``) so ``whale tokens list`` shows them and a revoked
token gets a clear 401 ("revoked", not "unknown").
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from whale import topics
from whale.authz import TOKEN_PREFIX, Identity, Kind, Role
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView

SAVED = "whale.token.saved"
SOURCE = "whale/tokens"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,99}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_personal_token() -> tuple[str, str]:
    """(token id, token): give the token to its owner once; store only :func:`hash_token` of it."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}.{secrets.token_urlsafe(32)}"


def new_record(
    token: str,
    token_id: str,
    *,
    name: str,
    role: Role,
    kind: Kind = "person",
    team: str | None = None,
    ttl: timedelta | None = timedelta(days=90),
    created_by: str = "cli",
    now: datetime | None = None,
    grants: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The stored record of a new token (no secret in it)."""
    if not NAME.match(name):
        raise ValueError(f"token name {name!r}: use 1-100 letters, digits, '@', '.', '_' or '-'")
    if role is Role.none:
        raise ValueError("a token needs a role: viewer, operator, author or admin")
    created = now or datetime.now(UTC)
    return {
        "id": token_id,
        "name": name,
        "kind": kind,
        "role": role.name,
        "team": team,
        "sha256": hash_token(token),
        "created": created.isoformat(),
        "expires": (created + ttl).isoformat() if ttl is not None else None,
        "created_by": created_by,
        "revoked": False,
        **({"grants": list(grants)} if grants else {}),
    }


def revoked(record: Mapping[str, Any], by: str, now: datetime | None = None) -> dict[str, Any]:
    return {**record, "revoked": True, "revoked_by": by, "revoked_at": (now or datetime.now(UTC)).isoformat()}


def to_event(record: Mapping[str, Any]) -> CloudEvent:
    return CloudEvent.create(type=SAVED, source=SOURCE, subject=str(record["id"]), data=dict(record))


def public(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as listed (the hash is not secret, but nobody needs to see it)."""
    return {k: v for k, v in record.items() if k != "sha256"}


class ViewTokenBook:
    """The :class:`~whale.authz.TokenBook` over a view of ``whale.tokens``."""

    def __init__(self, view: Any) -> None:
        self.view = view

    def record(self, token_id: str) -> Mapping[str, Any] | None:
        event = self.view.get(token_id)
        return event.data if event is not None and isinstance(event.data, Mapping) else None

    def records(self) -> list[Mapping[str, Any]]:
        return [e.data for e in self.view.items().values() if isinstance(e.data, Mapping)]


def token_view(settings: Any) -> CompactedView:
    return CompactedView(settings, topics.TOKENS)


def service_identity(name: str) -> Identity:
    """Whale's own services when they act without a caller (startup, bundled schemas)."""
    return Identity(name=name, kind="service", role=Role.admin)
