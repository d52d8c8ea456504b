"""Fakes for unit tests of the event center: Kafka views/producer and Elasticsearch in memory.

(A uniquely named module, not conftest: two conftest modules cannot both be imported by name.)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
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
from whale.binding import KafkaMessage, from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.errors import DeliveryError
from whale.producer import Delivered

TOKEN = "test-token-alerts"
OTHER_TOKEN = "test-token-signed"
SECRET = "hmac-secret"
ALERT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["host", "value"],
    "properties": {"host": {"type": "string"}, "value": {"type": "number", "maximum": 100}},
}


class FakeView:
    def __init__(self) -> None:
        self.records: dict[str, CloudEvent] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def get(self, key: str) -> CloudEvent | None:
        return self.records.get(key)

    def items(self) -> dict[str, CloudEvent]:
        return dict(self.records)

    def wait_for(self, predicate: Callable[[dict[str, CloudEvent]], bool], timeout: float) -> bool:
        return predicate(self.records)


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
    return [(t, m) for t, m in producer.sent if t != topics.EVENTS]


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {PEOPLE[who]}"}


class FakeProducer:
    """Acknowledges at once; ``fail`` makes every send a DeliveryError; SCHEMAS/TOKENS writes feed views."""

    def __init__(self, schemas: FakeView, people: FakeView | None = None) -> None:
        self.schemas = schemas
        self.people = people
        self.sent: list[tuple[str, KafkaMessage]] = []
        self.fail = False
        self.saturated = False

    async def send_message(self, topic: str, message: KafkaMessage) -> Delivered:
        if self.fail:
            raise DeliveryError("broker down")
        self.sent.append((topic, message))
        if topic == topics.SCHEMAS and message.key is not None:
            if message.value is None:  # a tombstone
                self.schemas.records.pop(message.key.decode(), None)
            else:
                self.schemas.records[message.key.decode()] = from_kafka(message)
        if topic == topics.TOKENS and message.key is not None and self.people is not None:
            self.people.records[message.key.decode()] = from_kafka(message)
        return Delivered(topic, 0, len(self.sent))

    async def send(self, topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        return await self.send_message(topic, to_binary(event, key))

    def close(self, timeout: float = 1.0) -> None:
        return None

    def events(self, topic: str = topics.INGEST) -> list[CloudEvent]:
        return [from_kafka(m) for t, m in self.sent if t == topic]


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
    schemas = FakeView()
    people = FakeView()
    people.records.update(PEOPLE_VIEW.records)
    producer = FakeProducer(schemas, people)
    store = FakeStore()

    async def ready() -> bool:
        return True

    parts = Components(
        producer=producer, schemas=schemas, rules=FakeView(), catalog=FakeView(), store=store,
        tokens=tokens(), kafka_ready=ready, people=people, todos=FakeView(), subscriptions=FakeView(),
        runs=FakeView(),
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


class LiveView:
    """What the /rules and /subscriptions routers use of a CompactedView; writes show up at once."""

    def __init__(self, items: dict[str, CloudEvent] | None = None) -> None:
        self._items = dict(items or {})
        self._cond = threading.Condition()

    def get(self, key: str) -> CloudEvent | None:
        return self._items.get(key)

    def items(self) -> dict[str, CloudEvent]:
        return dict(self._items)

    def wait_for(self, predicate: Callable[[dict[str, CloudEvent]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._items), timeout)

    def apply(self, key: str, event: CloudEvent | None) -> None:
        with self._cond:
            if event is None:
                self._items.pop(key, None)
            else:
                self._items[key] = event
            self._cond.notify_all()


class ViewWriter:
    """A producer writing straight into a :class:`LiveView`, as Kafka + the view's thread would."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.sent: list[tuple[str, KafkaMessage]] = []

    async def send(self, topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        return await self.send_message(topic, to_binary(event, key))

    async def send_message(self, topic: str, message: KafkaMessage) -> Delivered:
        self.sent.append((topic, message))
        key = (message.key or b"").decode()
        if topic == topics.EVENTS:  # audit events: not the entity's topic
            return Delivered(topic, 0, len(self.sent))
        self.view.apply(key, None if message.value is None else from_kafka(message))
        return Delivered(topic, 0, len(self.sent))


class AuditStore:
    """An Elasticsearch stand-in that has indexed every audit event ``producer`` sent (for rule
    history): answers term/terms filters on type, subject and source, newest first."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.queries: list[dict[str, Any]] = []

    async def search(self, query: dict[str, Any]) -> dict[str, Any]:
        self.queries.append(query)
        events = [from_kafka(m) for t, m in self.producer.sent if t == topics.EVENTS]
        for clause in query["query"]["bool"]["filter"]:
            for op, spec in clause.items():
                ((name, wanted),) = spec.items()
                allowed = wanted if op == "terms" else [wanted]
                events = [e for e in events if e.get(name) in allowed]
        events.sort(key=lambda e: e.time or 0, reverse=True)
        raw = [json.dumps(e.to_structured(), default=str) for e in events[: query.get("size", 10)]]
        return {"hits": {"hits": [{"_source": {"raw": r}} for r in raw]}}
