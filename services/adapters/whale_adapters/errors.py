"""Errors of the adapters (their place in the tree: :mod:`whale.errors`)."""

from __future__ import annotations

from whale.errors import EventError, WhaleError
from whale.jsonpath import MappingError as MappingError  # defined beside the JSON paths, shared


class AdapterError(WhaleError, code="adapter_error"):
    """Base of the errors the adapters raise on purpose."""


class SignatureError(AdapterError, status=401, code="unauthenticated"):
    """A webhook's HMAC signature is missing or wrong (the request is refused with 401)."""

    def __init__(self, message: str, *, webhook: str) -> None:
        super().__init__(message, webhook=webhook)
        self.webhook = webhook


class TokenRefused(AdapterError, status=401, code="unauthenticated"):
    """The Alertmanager bearer token is missing or wrong (401)."""


class NoSuchWebhook(AdapterError, status=404, code="not_found"):
    """No webhook of that name is configured (404)."""


class BodyTooLarge(AdapterError, status=413, code="too_large"):
    """The request body exceeds ``WHALE_ADAPTERS_MAX_BODY`` (413)."""


class PayloadError(EventError, status=422, code="invalid_payload"):
    """An incoming payload cannot become a valid event; ``problems`` say which field and why (422)."""


class BodyError(PayloadError, status=400, code="invalid_request"):
    """The request body is not usable JSON (malformed, or nested too deeply): answered 400."""
