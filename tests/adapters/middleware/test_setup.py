"""Set-up shared by the ASGI and WSGI middleware, and the publisher's ``block`` policy both use."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from whale_adapters.middleware import BackgroundPublisher, WhaleASGIMiddleware, WhaleWSGIMiddleware
from whale_adapters.middleware.mapping import Capture, Router, parse_config

from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import FakeProducer

CONFIG: dict[str, Any] = {
    "source": "/test/app",
    "validate_schemas": False,
    "routes": [{"method": "POST", "path": "/items", "type": "item.created"}],
}
CAPTURE = Capture(0, {}, "", b"{}", b"{}", 201)


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("middleware", "app"), [(WhaleASGIMiddleware, _asgi_app), (WhaleWSGIMiddleware, _wsgi_app)]
)
def test_each_middleware_refuses_to_start_without_config_or_publisher_naming_itself(
    middleware: Any, app: Any
) -> None:
    with pytest.raises(TypeError, match=f"^{middleware.__name__} needs config= .* or publisher=$"):
        middleware(app)


def test_each_middleware_builds_its_publisher_from_a_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "whale-events.yaml"
    path.write_text(
        "source: /test/app\nvalidate_schemas: false\nroutes:\n  - {method: POST, path: /x, type: x.done}\n"
    )
    asgi = WhaleASGIMiddleware(_asgi_app, config=path)
    wsgi = WhaleWSGIMiddleware(_wsgi_app, config=str(path), settings=WhaleSettings())
    try:
        for middleware in (asgi, wsgi):
            assert middleware.publisher.config.source == "/test/app"
            assert middleware.publisher.router.match("POST", "/x") == (0, {})
    finally:
        asgi.publisher.close()
        wsgi.close()


def _stuck_publisher(gate: threading.Event, **extra: Any) -> tuple[BackgroundPublisher, FakeProducer]:
    """A publisher whose worker cannot drain its queue of one until ``gate`` opens."""
    producer = FakeProducer()

    def stuck_producer() -> EventProducer:
        gate.wait(30)
        return cast(EventProducer, producer)

    config = parse_config({**CONFIG, "queue_size": 1, "when_full": "block", **extra})
    return BackgroundPublisher(WhaleSettings(), Router(config), producer_factory=stuck_producer), producer


def test_block_policy_waits_up_to_block_timeout_for_room_then_drops() -> None:
    gate = threading.Event()
    publisher, _ = _stuck_publisher(gate, block_timeout=0.1)
    try:
        assert publisher.offer(CAPTURE) is True
        started = time.monotonic()
        assert publisher.offer(CAPTURE) is False
        assert time.monotonic() - started >= 0.1
        assert (publisher.counts.queued, publisher.counts.dropped) == (1, 1)
    finally:
        gate.set()
        publisher.close()


async def test_block_policy_of_offer_async_queues_once_room_appears_without_blocking_the_loop() -> None:
    gate = threading.Event()
    publisher, producer = _stuck_publisher(gate, block_timeout=5.0)
    try:
        assert await publisher.offer_async(CAPTURE) is True
        waiting = asyncio.create_task(publisher.offer_async(CAPTURE))
        await asyncio.sleep(0.05)  # the loop still runs while the offer waits
        assert not waiting.done()
        gate.set()  # the worker drains the queue: room appears
        assert await asyncio.wait_for(waiting, 5) is True
        assert (publisher.counts.queued, publisher.counts.dropped) == (2, 0)
    finally:
        gate.set()
        await asyncio.to_thread(publisher.close)
    assert len(producer.sent) == 2
