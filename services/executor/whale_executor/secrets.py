"""Secret references: ``env:NAME`` or ``file:/path``. Definitions never hold secret values.

Every value :func:`resolve` reads is remembered (in this process only) so that :func:`scrub` and
:func:`scrub_value` can hide it, in every form a response may echo it (raw, JSON-escaped,
URL-encoded, base64) and, for a URL, each part that carries a secret (password, query values,
long path segments such as a robot's key), before anything is logged, published or indexed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from whale.inventory import secret_ref_problem
from whale_executor.errors import CatalogError, SecretError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDACTED = "***"
MIN_SECRET = 4  # shorter values are too common to hide without destroying the text
MIN_PATH_SECRET = 16  # a URL path segment this long is taken for a key (Slack, WeCom, Teams URLs)
_known: set[str] = set()
_known_lock = threading.Lock()


def check_ref(ref: object, *, source: str, field: str) -> str:
    """Raise :class:`CatalogError` unless ``ref`` is a well-formed secret reference."""
    problem = secret_ref_problem(ref)
    if problem:
        raise CatalogError(problem, source=source, field=field)
    assert isinstance(ref, str)
    return ref


def resolve(ref: str) -> str:
    """The secret's value. Errors name the reference, never the value."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if value is None:
            raise SecretError(f"secret {ref} is not set in the executor's environment", ref=ref)
        return remember(value)
    if ref.startswith("file:"):
        try:
            return remember(Path(ref[5:]).read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise SecretError(f"secret {ref} cannot be read: {exc.strerror}", ref=ref) from None
    raise SecretError(f"{ref!r} is not a secret reference", ref=ref)


def remember(value: str) -> str:
    """Record a secret value so that every later :func:`scrub` hides it; returns it."""
    if len(value) >= MIN_SECRET:
        with _known_lock:
            _known.add(value)
    return value


def known() -> frozenset[str]:
    with _known_lock:
        return frozenset(_known)


def url_parts(value: str) -> set[str]:
    """The parts of a URL that carry a secret: password, user, query values, long path segments."""
    if "://" not in value:
        return set()
    try:
        parts = urlsplit(value)
        found = {parts.password or "", parts.username or ""}
        found.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
        found.update(seg for seg in parts.path.split("/") if len(seg) >= MIN_PATH_SECRET)
    except ValueError:
        return set()
    return {part for part in found if len(part) >= MIN_SECRET}


def representations(secret: str) -> set[str]:
    """How ``secret`` may appear in a text: raw, JSON-escaped (both ASCII modes, with ``\\/``),
    URL-encoded (``%20`` and ``+``) and base64 (standard and URL-safe, with or without padding)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
    for ensure_ascii in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1]
        forms.update({escaped, escaped.replace("/", "\\/")})
    raw = secret.encode("utf-8")
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.update({text, text.rstrip("=")})
    return {form for form in forms if len(form) >= MIN_SECRET}


def _forms(secrets: Iterable[str]) -> list[str]:
    values = set(secrets) | known()
    for value in list(values):
        values |= url_parts(value)
    forms: set[str] = set()
    for value in values:
        if len(value) >= MIN_SECRET:
            forms |= representations(value)
    return sorted(forms, key=len, reverse=True)  # longest first: a URL before its key


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every form of every secret (``secrets`` and all resolved so far) as ``***``."""
    for form in _forms(secrets):
        if form in text:
            text = text.replace(form, REDACTED)
    return text


def scrub_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value with every string (keys too) scrubbed; other values unchanged."""
    forms = _forms(secrets)

    def text(item: str) -> str:
        for form in forms:
            if form in item:
                item = item.replace(form, REDACTED)
        return item

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {text(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)
