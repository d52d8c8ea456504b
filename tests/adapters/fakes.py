"""Fakes for unit tests of the adapters (integration tests use the real Kafka)."""

from __future__ import annotations

from typing import Any

from whale.binding import KafkaMessage
from whale.cloudevent import CloudEvent
from whale.producer import Delivered


class FakeProducer:
    """Records what would have been sent; acknowledges everything."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, CloudEvent, str | None]] = []
        self.messages: list[tuple[str, KafkaMessage]] = []
        self.closed = False

    async def send(self, topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        self.sent.append((topic, event, key))
        return Delivered(topic, 0, len(self.sent))

    async def send_message(self, topic: str, message: KafkaMessage) -> Delivered:
        self.messages.append((topic, message))
        return Delivered(topic, 0, len(self.messages))

    def close(self, timeout: float = 30.0) -> None:
        self.closed = True

    def flush(self, timeout: float = 30.0) -> int:
        return 0


class DictSchemas:
    """A schema source backed by a dict (type -> whale.schema.registered record)."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self._records = {
            t: CloudEvent.create(
                type="whale.schema.registered",
                source="/test",
                data={
                    "type": t,
                    "versions": [{"version": 1, "schema": s, "registered_at": "2026-01-01T00:00:00Z"}],
                },
            )
            for t, s in schemas.items()
        }

    def get(self, key: str) -> CloudEvent | None:
        return self._records.get(key)
