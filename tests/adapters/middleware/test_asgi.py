"""ASGI middleware: events only after 2xx, response not delayed, drop policy counted, flush at shutdown."""

from __future__ import annotations

import threading
from typing import Any, cast

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from whale_adapters.middleware import BackgroundPublisher, WhaleASGIMiddleware
from whale_adapters.middleware.mapping import Router, parse_config

from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import FakeProducer


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "source": "/test/app",
        "validate_schemas": False,
        "routes": [
            {"method": "POST", "path": "/items", "type": "item.created", "subject": "{{ response.id }}"},
            {
                "method": "DELETE",
                "path": "/items/{item_id}",
                "type": "item.deleted",
                "subject": "{{ path.item_id }}",
            },
        ],
        **extra,
    }


def _app(publisher: BackgroundPublisher) -> FastAPI:
    app = FastAPI()

    @app.post("/items", status_code=201)
    def create(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("fail"):
            raise HTTPException(400, "refused")
        return {"id": "i-1", **body}

    @app.get("/items")
    def listing() -> list[str]:
        return []

    app.add_middleware(WhaleASGIMiddleware, publisher=publisher)
    return app


def test_successful_calls_of_mapped_routes_become_events_flushed_at_shutdown() -> None:
    producer = FakeProducer()
    publisher = BackgroundPublisher(
        WhaleSettings(),
        Router(parse_config(_config())),
        producer_factory=lambda: cast(EventProducer, producer),
    )
    with TestClient(_app(publisher)) as client:
        assert client.post("/items", json={"name": "a", "password": "pw"}).status_code == 201
        assert client.post("/items", json={"fail": True}).status_code == 400  # not 2xx: no event
        assert client.get("/items").status_code == 200  # not mapped: no event
        assert client.delete("/items/i-1").status_code == 404  # mapped but not 2xx
    assert producer.closed  # lifespan shutdown flushed and closed the producer
    assert [(t, e.type, e.subject) for t, e, _ in producer.sent] == [("whale.ingest", "item.created", "i-1")]
    event = producer.sent[0][1]
    assert event.data["request"]["password"] == "***"
    assert producer.sent[0][2] == f"/test/app\n{event.id}"
    assert publisher.counts.published == 1


def test_when_the_queue_is_full_drop_policy_counts_drops_and_never_blocks_the_response() -> None:
    gate = threading.Event()
    producer = FakeProducer()

    def stuck_producer() -> EventProducer:  # the worker cannot drain until the gate opens
        gate.wait(30)
        return cast(EventProducer, producer)

    publisher = BackgroundPublisher(
        WhaleSettings(), Router(parse_config(_config(queue_size=1))), producer_factory=stuck_producer
    )
    with TestClient(_app(publisher)) as client:
        for _ in range(50):
            assert client.post("/items", json={"name": "x"}).status_code == 201  # answered at once
        assert (publisher.counts.queued, publisher.counts.dropped) == (1, 49)
        gate.set()
    assert publisher.counts.published == 1 == len(producer.sent)
