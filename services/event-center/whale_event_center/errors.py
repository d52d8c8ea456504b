"""Errors of the event center (their place in the tree: :mod:`whale.errors`)."""

from __future__ import annotations

from typing import Any

from whale.errors import WhaleError

Problem = dict[str, str]


class EventCenterError(WhaleError):
    """Base of the event center's errors: ``status`` is the HTTP answer, ``code`` its ``error``.

    ``event_id`` names the event of a batch an error is about (it joins the HTTP body).
    """

    def __init__(
        self,
        message: str,
        problems: list[Problem] | None = None,
        *,
        event_id: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, problems, field=field, headers=headers, event_id=event_id)
        self.event_id = event_id

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.event_id is not None:
            out["event_id"] = self.event_id
        return out


class InvalidEvent(EventCenterError, status=400, code="invalid_event"):
    """The request or event breaks the CloudEvents rules or its type's schema (400)."""


class TooLarge(EventCenterError, status=413, code="too_large"):
    """The request or one event exceeds the size limit (413)."""


class Unauthenticated(EventCenterError, status=401, code="unauthenticated"):
    """No, unknown or malformed credentials, or a bad signature (401)."""


class Forbidden(EventCenterError, status=403, code="forbidden"):
    """The credentials do not grant this event's source (403)."""


class NotFound(EventCenterError, status=404, code="not_found"):
    """No such event, event type, schema version, rule or subscription (404)."""


class UnsupportedMediaType(EventCenterError, status=415, code="unsupported_media_type"):
    """The request's Content-Type is not one the endpoint reads (415)."""


class Conflict(EventCenterError, status=409, code="conflict"):
    """The resource's state forbids the change (e.g. deleting a type with events in retention) (409)."""


class IncompatibleSchema(EventCenterError, status=409, code="incompatible_schema"):
    """A new schema version breaks backward compatibility; ``problems`` lists every break (409)."""


class InvalidSchema(EventCenterError, status=400, code="invalid_schema"):
    """A submitted JSON Schema is not a valid draft 2020-12 schema (400)."""


class Saturated(EventCenterError, status=429, code="saturated", retryable=True):
    """Too many writes are waiting for Kafka; retry later (429)."""


class Unavailable(EventCenterError, status=503, code="unavailable", retryable=True):
    """Kafka or Elasticsearch did not answer in time; nothing was accepted (503)."""


class AlreadyResolved(EventCenterError, status=409, code="resolved"):
    """The to-do item is resolved; only comments are accepted (409)."""
