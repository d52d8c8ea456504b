"""The sign-in session: one encrypted, signed, HttpOnly, SameSite=strict cookie, and CSRF tokens.

The cookie holds the person's own credential (their personal token or OIDC JWT), the name and role
the event center gave for it (``GET /whoami``), a CSRF token and an expiry, sealed with Fernet
(AES-128-CBC + HMAC-SHA256) under ``WHALE_CONSOLE_SESSION_SECRET``: the browser can neither read nor
change it, and scripts cannot reach it. Every form carries the session's CSRF token (htmx sends it
as ``X-CSRF-Token``); the sign-in form, before any session exists, carries a token bound to a
short-lived nonce cookie (double submit, signed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken

from whale.authz import Role

COOKIE = "whale_console"
LOGIN_COOKIE = "whale_console_login"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person: their credential (None in dev mode), who the API says they are."""

    name: str
    role: str
    csrf: str
    expires: float
    token: str | None = None
    via: str = "token"

    @property
    def level(self) -> Role:
        try:
            return Role.parse(self.role)
        except ValueError:
            return Role.none

    def may(self, role: str) -> bool:
        """Whether the person's role includes ``role`` (``viewer``, ``operator``, ``author``, ``admin``)."""
        return self.level >= Role.parse(role)


class Sealer:
    """Seals and opens session cookies and signs sign-in nonces with one secret."""

    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(b"whale-console-session:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._mac_key = hashlib.sha256(b"whale-console-csrf:" + secret.encode()).digest()

    def seal(self, session: Session) -> str:
        return self._fernet.encrypt(json.dumps(asdict(session)).encode()).decode()

    def open(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session in ``cookie``; None when absent, forged, sealed with another key or expired."""
        if not cookie:
            return None
        try:
            data = json.loads(self._fernet.decrypt(cookie.encode()))
            session = Session(**data)
        except (InvalidToken, ValueError, TypeError):
            return None
        if session.expires <= (now if now is not None else time.time()):
            return None
        return session

    def login_csrf(self, nonce: str) -> str:
        """The sign-in form's CSRF token for the nonce kept in the sign-in cookie."""
        return hmac.new(self._mac_key, nonce.encode(), hashlib.sha256).hexdigest()

    def login_csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(self.login_csrf(str(nonce)), str(token))


def new_session(
    *, name: str, role: str, token: str | None, via: str, hours: float, now: float | None = None
) -> Session:
    return Session(
        name=name,
        role=role,
        csrf=secrets.token_urlsafe(24),
        expires=(now if now is not None else time.time()) + hours * 3600,
        token=token,
        via=via,
    )


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, str(sent))
