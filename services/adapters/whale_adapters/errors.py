"""Errors of the adapters and the dispatcher: one small tree with structured fields."""

from __future__ import annotations

from typing import Any

from whale.errors import ConfigError, EventError, WhaleError


class AdapterError(WhaleError):
    """Base of the errors the adapters raise on purpose."""


class MappingError(ConfigError):
    """A mapping, webhook, poller or subscription definition is malformed; ``field`` names where."""

    def __init__(self, message: str, *, field: str, source: str | None = None, **fields: Any) -> None:
        super().__init__(message, field=field, source=source, **fields)
        self.field = field
        self.source = source


class SignatureError(AdapterError):
    """A webhook's HMAC signature is missing or wrong (the request is refused with 401)."""

    def __init__(self, message: str, *, webhook: str) -> None:
        super().__init__(message, webhook=webhook)
        self.webhook = webhook


class PayloadError(EventError):
    """An incoming payload cannot become a valid event; ``problems`` say which field and why."""


class BodyError(PayloadError):
    """The request body is not usable JSON (malformed, or nested too deeply): answered 400."""


class DeliveryFailed(AdapterError):
    """A push delivery attempt failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message, status=status, retryable=retryable)
        self.status = status
        self.retryable = retryable
