"""Errors of the console (their place in the tree: :mod:`whale.errors`)."""

from __future__ import annotations

from typing import Any

from whale.errors import WhaleError


class ConsoleError(WhaleError, code="console_error"):
    """Base of the console's errors."""


class NotSignedIn(ConsoleError, status=401, code="unauthenticated"):
    """No session, or it expired or was signed with another key: sign in again (401)."""


class CsrfRejected(ConsoleError, status=403, code="csrf_rejected"):
    """A form came without this session's CSRF token (403)."""


class ApiUnreachable(ConsoleError, status=502, code="api_unreachable", retryable=True):
    """The event center did not answer (502)."""


class ApiRefused(ConsoleError, status=502, code="api_refused"):
    """The event center answered an error; ``api_status`` and its body's problems are kept."""

    def __init__(self, api_status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else None
        problems = body.get("problems") if isinstance(body, dict) else None
        super().__init__(str(message or f"the event center answered {api_status}"), problems or [])
        self.api_status = api_status
        self.api_body = body
