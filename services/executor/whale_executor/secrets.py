"""Secret references: ``env:NAME`` or ``file:/path``. Definitions never hold secret values."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from whale_executor.errors import CatalogError, SecretError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDACTED = "***"


def check_ref(ref: object, *, source: str, field: str) -> str:
    """Raise :class:`CatalogError` unless ``ref`` is a well-formed secret reference."""
    if not isinstance(ref, str) or not (ref.startswith("env:") or ref.startswith("file:")):
        raise CatalogError(
            "must be a secret reference (env:NAME or file:/path); inline secret values are not allowed",
            source=source,
            field=field,
        )
    if ref.startswith("env:") and not _ENV_NAME.match(ref[4:]):
        raise CatalogError(f"{ref!r} is not a valid environment variable name", source=source, field=field)
    if ref.startswith("file:") and not ref[5:].startswith("/"):
        raise CatalogError(f"{ref!r} must name an absolute path", source=source, field=field)
    return ref


def resolve(ref: str) -> str:
    """The secret's value. Errors name the reference, never the value."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if value is None:
            raise SecretError(f"secret {ref} is not set in the executor's environment", ref=ref)
        return value
    if ref.startswith("file:"):
        try:
            return Path(ref[5:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"secret {ref} cannot be read: {exc.strerror}", ref=ref) from None
    raise SecretError(f"{ref!r} is not a secret reference", ref=ref)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a (non-trivial) secret value replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
