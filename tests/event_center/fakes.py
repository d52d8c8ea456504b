"""Fakes for unit tests of the event center: Elasticsearch in memory, personal tokens, an app harness
(the Kafka producer and views are :mod:`whale.testing`'s).

(A uniquely named module, not conftest: two conftest modules cannot both be imported by name.)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from whale_event_center.app import create_app
from whale_event_center.auth import TokenStore
from whale_event_center.components import Components
from whale_event_center.settings import Settings

from whale import tokens as personal
from whale import topics
from whale.authz import Role
from whale.binding import KafkaMessage, from_kafka
from whale.testing import FakeProducer, FakeView

TOKEN = "test-token-alerts"
OTHER_TOKEN = "test-token-signed"
SECRET = "hmac-secret"
ALERT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["host", "value"],
    "properties": {"host": {"type": "string"}, "value": {"type": "number", "maximum": 100}},
}


def people_view() -> tuple[FakeView, dict[str, str]]:
    """A ``whale.tokens`` view with one personal token per role, an expired and a revoked one."""
    view, issued = FakeView(), {}
    for label in ("viewer", "operator", "author", "admin", "expired", "revoked"):
        token_id, token = personal.new_personal_token()
        role = Role.parse(label) if label in Role.__members__ else Role.admin
        ttl = timedelta(seconds=-1) if label == "expired" else timedelta(days=1)
        record = personal.new_record(token, token_id, name=f"{label}-person", role=role, ttl=ttl)
        if label == "revoked":
            record = personal.revoked(record, "test")
        view.records[token_id] = personal.to_event(record)
        issued[label] = token
    return view, issued


PEOPLE_VIEW, PEOPLE = people_view()
"""Personal tokens by role (and "expired", "revoked") for the apps these fakes build."""


def stored(producer: Any) -> list[tuple[str, KafkaMessage]]:
    """What ``producer`` sent, less the audit events on whale.events."""
    return [(t, m) for t, m in producer.records if t != topics.EVENTS]


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {PEOPLE[who]}"}


class FakeStore:
    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []
        self.hits: list[dict[str, Any]] = []
        self.stored = 0  # what count() answers

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def count(self, query: dict[str, Any]) -> int:
        self.queries.append(query)
        return self.stored

    async def search(self, query: dict[str, Any]) -> dict[str, Any]:
        self.queries.append(query)
        return {"hits": {"hits": self.hits[: query.get("size", 10)]}}


def tokens() -> TokenStore:
    doc = {
        "tokens": [
            {
                "name": "alerts",
                "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                "sources": ["urn:test:alerts/*"],
            },
            {
                "name": "signed",
                "sha256": hashlib.sha256(OTHER_TOKEN.encode()).hexdigest(),
                "sources": ["urn:test:signed"],
                "hmac_secret_env": "SIGNED_SECRET",
            },
        ]
    }
    return TokenStore.from_document(doc, env={"SIGNED_SECRET": SECRET})


class Harness:
    def __init__(
        self, client: TestClient, producer: FakeProducer, store: FakeStore, schemas: FakeView
    ) -> None:
        self.client = client
        self.producer = producer
        self.store = store
        self.schemas = schemas


def make_harness(**overrides: Any) -> Iterator[Harness]:
    settings = Settings(schemas_dir=None, **overrides)
    schemas = FakeView(waits=False)  # fed at once by the producer; the others are not fed
    people = FakeView(waits=False)
    people.records.update(PEOPLE_VIEW.records)
    producer = FakeProducer(views={topics.SCHEMAS: schemas, topics.TOKENS: people})
    store = FakeStore()

    async def ready() -> bool:
        return True

    parts = Components(
        producer=producer, schemas=schemas, rules=FakeView(waits=False), catalog=FakeView(waits=False),
        store=store, tokens=tokens(), kafka_ready=ready, people=people, todos=FakeView(waits=False),
        subscriptions=FakeView(waits=False),
        runs=FakeView(waits=False),
    )  # fmt: skip
    app = create_app(settings, parts)
    with TestClient(app, headers=bearer("admin")) as client:
        for _ in range(100):
            if parts.views_ready.is_set():
                break
            time.sleep(0.01)
        response = client.put("/schemas/test.alert", json=ALERT_SCHEMA)
        assert response.status_code == 200, response.text
        yield Harness(client, producer, store, schemas)


class AuditStore:
    """An Elasticsearch stand-in that has indexed every audit event ``producer`` sent (for rule
    history): answers term/terms filters on type, subject and source, newest first."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.queries: list[dict[str, Any]] = []

    async def search(self, query: dict[str, Any]) -> dict[str, Any]:
        self.queries.append(query)
        events = [from_kafka(m) for t, m in self.producer.records if t == topics.EVENTS]
        for clause in query["query"]["bool"]["filter"]:
            for op, spec in clause.items():
                ((name, wanted),) = spec.items()
                allowed = wanted if op == "terms" else [wanted]
                events = [e for e in events if e.get(name) in allowed]
        events.sort(key=lambda e: e.time or 0, reverse=True)
        raw = [json.dumps(e.to_structured(), default=str) for e in events[: query.get("size", 10)]]
        return {"hits": {"hits": [{"_source": {"raw": r}} for r in raw]}}
