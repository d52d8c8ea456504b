"""Fakes for unit tests of the adapters (the producer and views are :mod:`whale.testing`'s;
integration tests use the real Kafka)."""

from __future__ import annotations

from typing import Any

from whale.testing import FakeView, schema_record


class DictSchemas(FakeView):
    """A ``whale.schemas`` view registering each type's schema (type -> schema) as its version 1."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        super().__init__({t: schema_record(t, s) for t, s in schemas.items()})
