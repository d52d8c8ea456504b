"""Sender authentication: hashed API tokens granting sources and types, optional HMAC signatures.

Tokens file (YAML or JSON)::

    tokens:
      - name: alertmanager                 # who the sender is (logged, never the token)
        sha256: 5e884898da28...            # sha256 hex of the token (the token itself is never stored)
        sources: ["urn:whale:alertmanager", "https://alerts.example.com/*"]
        types: ["prometheus.alert.*"]      # type globs (default: any type outside whale.*)
        hmac_secret_env: ALERTMANAGER_HMAC # optional: bodies must be signed, see below
        whale_service: false               # true only for Whale's own services: may hold whale.* grants

A source grant ending in ``*`` is a prefix; anything else must equal the event's source exactly.
Type grants are globs (``fnmatch``). ``whale.*`` types are reserved: a grant matches one only when
it names ``whale.`` explicitly and the token is a Whale service; ``whale.approval.*`` is never
granted to a sender token (approvals come from a person holding the operator role).

A signed request carries ``X-Whale-Timestamp: <unix seconds>`` and ``X-Whale-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``; it is refused (401) outside the replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from whale.errors import ConfigError
from whale.tokens import hash_token as hash_token  # re-exported: sender tokens hash the same way
from whale_event_center.errors import Forbidden, Unauthenticated


def new_token() -> str:
    """A fresh random token (give it to the sender; store only :func:`hash_token` of it)."""
    return "whk_" + secrets.token_urlsafe(32)


RESERVED = "whale."
APPROVALS = "whale.approval.*"


def sign(secret: bytes, body: bytes, timestamp: int | str) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``."""
    return "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def type_allowed(grants: tuple[str, ...], type_: str, *, whale_service: bool) -> bool:
    """Whether type globs ``grants`` cover ``type_`` (``whale.*`` types only for Whale's services)."""
    if type_.startswith(RESERVED):
        if not whale_service or fnmatchcase(type_, APPROVALS):
            return False
        return any(g.startswith(RESERVED) and fnmatchcase(type_, g) for g in grants)
    return any(fnmatchcase(type_, g) for g in grants)


@dataclass(frozen=True, slots=True)
class Sender:
    """An authenticated sender: the sources and types it may publish (a person: ``person`` set)."""

    name: str
    sources: tuple[str, ...]
    hmac_secret: bytes | None = None
    types: tuple[str, ...] = ("*",)
    whale_service: bool = False
    person: Any = None  # the whale.authz.Identity of a person (may answer approvals), else None

    def may_publish(self, source: str) -> bool:
        for grant in self.sources:
            if grant.endswith("*"):
                if source.startswith(grant[:-1]):
                    return True
            elif source == grant:
                return True
        return False

    def check_source(self, source: str, event_id: str | None = None) -> None:
        if not self.may_publish(source):
            granted = ", ".join(self.sources) or "none"
            raise Forbidden(
                f"sender {self.name!r} may not publish events with source {source!r} (granted: {granted})",
                event_id=event_id,
                field="source",
            )

    def check_type(self, type_: str, event_id: str | None = None) -> None:
        if self.person is not None:
            if type_.startswith(RESERVED) and not fnmatchcase(type_, APPROVALS):
                raise Forbidden(
                    f"{self.name!r} may not publish {type_!r}: whale.* types are reserved to Whale's services",
                    event_id=event_id,
                    field="type",
                )
            return
        if not type_allowed(self.types, type_, whale_service=self.whale_service):
            why = (
                "approvals are accepted only from a person holding the operator role"
                if fnmatchcase(type_, APPROVALS)
                else "whale.* types are reserved to Whale's own services"
                if type_.startswith(RESERVED)
                else f"granted: {', '.join(self.types)}"
            )
            raise Forbidden(
                f"sender {self.name!r} may not publish events of type {type_!r} ({why})",
                event_id=event_id,
                field="type",
            )


DEV_SENDER = Sender(name="dev-mode", sources=("*",), whale_service=True, types=("*", "whale.*"))


class TokenStore:
    """sha256(token) -> :class:`Sender`, loaded from the tokens file."""

    def __init__(self, senders: dict[str, Sender]) -> None:
        self._by_hash = senders

    @classmethod
    def load(cls, path: Path, env: dict[str, str] | None = None) -> TokenStore:
        env = dict(os.environ) if env is None else env
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read tokens file {path}: {exc}", source=str(path)) from None
        try:
            doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"tokens file {path} is not valid YAML/JSON: {exc}", source=str(path)) from None
        return cls.from_document(doc, source=str(path), env=env)

    @classmethod
    def from_document(cls, doc: Any, *, source: str = "<tokens>", env: dict[str, str]) -> TokenStore:
        entries = doc.get("tokens") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ConfigError(
                f"{source}: expected a mapping with a 'tokens' list", field="tokens", source=source
            )
        senders: dict[str, Sender] = {}
        for index, entry in enumerate(entries):
            where = f"tokens[{index}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{source}: {where} must be a mapping", field=where, source=source)
            name, digest, sources = entry.get("name"), entry.get("sha256"), entry.get("sources")
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{source}: {where}.name must be a non-empty string", field=f"{where}.name")
            if (
                not isinstance(digest, str)
                or len(digest) != 64
                or any(c not in "0123456789abcdef" for c in digest)
            ):
                raise ConfigError(
                    f"{source}: {where}.sha256 must be the 64-character lower-case hex sha256 of the token",
                    field=f"{where}.sha256",
                )
            if (
                not isinstance(sources, list)
                or not sources
                or not all(isinstance(s, str) and s for s in sources)
            ):
                raise ConfigError(
                    f"{source}: {where}.sources must be a non-empty list of sources or 'prefix*' grants",
                    field=f"{where}.sources",
                )
            types = entry.get("types", ["*"])
            if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
                raise ConfigError(
                    f"{source}: {where}.types must be a non-empty list of type globs", field=f"{where}.types"
                )
            whale_service = entry.get("whale_service", False) is True
            secret: bytes | None = None
            secret_env = entry.get("hmac_secret_env")
            if secret_env is not None:
                value = env.get(str(secret_env))
                if not value:
                    raise ConfigError(
                        f"{source}: {where}.hmac_secret_env names {secret_env!r}, which is not set",
                        field=f"{where}.hmac_secret_env",
                    )
                secret = value.encode("utf-8")
            if digest in senders:
                raise ConfigError(f"{source}: {where} repeats a token hash", field=f"{where}.sha256")
            senders[digest] = Sender(
                name=name,
                sources=tuple(sources),
                hmac_secret=secret,
                types=tuple(types),
                whale_service=whale_service,
            )
        return cls(senders)

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(
        self,
        authorization: str | None,
        signature: str | None,
        body: bytes,
        timestamp: str | None = None,
        *,
        window: int = 300,
        now: float | None = None,
    ) -> Sender:
        """The sender of a request, or :class:`Unauthenticated` saying why not."""
        if not authorization:
            raise Unauthenticated(
                "missing credentials: send 'Authorization: Bearer <token>'", field="authorization"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "malformed Authorization header: expected 'Bearer <token>'", field="authorization"
            )
        sender = self._by_hash.get(hash_token(token.strip()))
        if sender is None:
            raise Unauthenticated("unknown or revoked token", field="authorization")
        if sender.hmac_secret is not None:
            if not signature:
                raise Unauthenticated(
                    f"sender {sender.name!r} must sign the body (HMAC-SHA256, header 'sha256=<hex>')",
                    field="signature",
                )
            _check_timestamp(timestamp, window, time.time() if now is None else now)
            assert timestamp is not None
            expected = sign(sender.hmac_secret, body, timestamp.strip())
            if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
                raise Unauthenticated(
                    "signature does not match (HMAC-SHA256 over '<timestamp>.' + the raw body)",
                    field="signature",
                )
        return sender


def _check_timestamp(timestamp: str | None, window: int, now: float) -> None:
    if not timestamp:
        raise Unauthenticated(
            "a signed request must carry X-Whale-Timestamp (unix seconds, signed with the body)",
            field="timestamp",
        )
    try:
        when = int(timestamp.strip())
    except ValueError:
        raise Unauthenticated("X-Whale-Timestamp must be unix seconds", field="timestamp") from None
    if abs(now - when) > window:
        raise Unauthenticated(
            f"the request's timestamp is {int(now - when)} s away from now; signed requests are accepted "
            f"within {window} s (replay window): sign it again with the current time",
            field="timestamp",
        )
