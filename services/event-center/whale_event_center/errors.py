"""Errors of the event center: one small tree; each maps to an HTTP status and a JSON body."""

from __future__ import annotations

from typing import Any

from whale.errors import WhaleError

Problem = dict[str, str]


class EventCenterError(WhaleError):
    """Base: ``status`` is the HTTP answer, ``problems`` lists ``{"field", "message"}`` entries."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        problems: list[Problem] | None = None,
        *,
        event_id: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, event_id=event_id, field=field)
        self.problems = problems or ([{"field": field, "message": message}] if field else [])
        self.event_id = event_id
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.problems:
            out["problems"] = self.problems
        if self.event_id is not None:
            out["event_id"] = self.event_id
        return out


class InvalidEvent(EventCenterError):
    """The request or event breaks the CloudEvents rules or its type's schema (400)."""

    status = 400
    code = "invalid_event"


class TooLarge(EventCenterError):
    """The request or one event exceeds the size limit (413)."""

    status = 413
    code = "too_large"


class Unauthenticated(EventCenterError):
    """No, unknown or malformed credentials, or a bad signature (401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(EventCenterError):
    """The credentials do not grant this event's source (403)."""

    status = 403
    code = "forbidden"


class NotFound(EventCenterError):
    status = 404
    code = "not_found"


class UnsupportedMediaType(EventCenterError):
    status = 415
    code = "unsupported_media_type"


class IncompatibleSchema(EventCenterError):
    """A new schema version breaks backward compatibility; ``problems`` lists every break (409)."""

    status = 409
    code = "incompatible_schema"


class InvalidSchema(EventCenterError):
    """A submitted JSON Schema is not a valid draft 2020-12 schema (400)."""

    status = 400
    code = "invalid_schema"


class Saturated(EventCenterError):
    """Too many writes are waiting for Kafka; retry later (429)."""

    status = 429
    code = "saturated"


class Unavailable(EventCenterError):
    """Kafka or Elasticsearch did not answer in time; nothing was accepted (503)."""

    status = 503
    code = "unavailable"


class StoreUnavailable(WhaleError):
    """Elasticsearch refused or did not answer; the indexer retries (never skips)."""

    retryable = True
