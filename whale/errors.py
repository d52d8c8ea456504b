"""Errors of the shared library: one small tree with structured fields."""

from __future__ import annotations

from typing import Any


class WhaleError(Exception):
    """Base of every error Whale raises on purpose. ``str()`` is a message a person understands."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return self.message


class ConfigError(WhaleError):
    """A configuration file or setting is malformed (``field`` names what, ``source`` where)."""


class InfraError(WhaleError):
    """The local Kafka/Elasticsearch stack could not be fetched, started or stopped."""


class EventError(WhaleError):
    """A CloudEvent is invalid. ``problems`` lists ``{"field": ..., "message": ...}`` entries."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.problems = problems or []


class BindingError(EventError):
    """A Kafka message cannot be read as a CloudEvent (poison message)."""


class DeliveryError(WhaleError):
    """Kafka did not acknowledge a write (the event was not durably stored)."""

    def __init__(self, message: str, *, event_id: str | None = None, retryable: bool = True) -> None:
        super().__init__(message, event_id=event_id)
        self.event_id = event_id
        self.retryable = retryable


class MessageTooLarge(DeliveryError):
    """The message exceeds what Kafka takes (producer ``message.max.bytes`` or the topic's
    ``max.message.bytes``): a permanent error, answered 413, never retried."""

    def __init__(self, message: str, *, limit: int, event_id: str | None = None) -> None:
        super().__init__(message, event_id=event_id, retryable=False)
        self.limit = limit


class TopicError(WhaleError):
    """A topic exists with a configuration that contradicts the topic contract."""
