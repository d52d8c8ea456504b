"""Fakes for unit tests of the adapters (the producer is :class:`whale.testing.FakeProducer`;
integration tests use the real Kafka)."""

from __future__ import annotations

from typing import Any

from whale.cloudevent import CloudEvent


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
