"""``whale run dispatcher`` on real Kafka: push subscriptions deliver in CloudEvents HTTP binary mode
in order per key, retry a failing endpoint, dead-letter after the limit, and pause/resume; ``/readyz``
answers 200 once every subscription's consumer joined its group (or is paused)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from whale_dispatcher.app import serve
from whale_dispatcher.cli import apply_subscriptions
from whale_dispatcher.settings import Settings

from tests.integration.event_center.live import admin_token
from tests.ports import free_port
from whale import topics
from whale.cloudevent import CloudEvent
from whale.compacted import delete
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.subscriptions import Subscription

pytestmark = pytest.mark.integration


class Receiver:
    """A real HTTP endpoint: /ok accepts, /flaky refuses every first attempt of an odd seq, /down refuses."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.attempts: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.strip("/")
                with lock:
                    me.attempts[f"{path}:{headers.get('ce-id')}"] += 1
                    tries = me.attempts[f"{path}:{headers.get('ce-id')}"]
                    data: Any = json.loads(body) if body else None
                    if path == "down" or (path == "flaky" and data["seq"] % 2 == 1 and tries == 1):
                        status = 503
                    else:
                        status = 200
                        me.received[path].append({"headers": headers, "data": data})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


async def wait_until(predicate: Any, timeout: float = 90.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


async def readyz_once_ready(port: int, timeout: float = 30.0) -> Any:
    """The body of the first 200 from /readyz (other records on the shared topic may lag a moment)."""
    async with httpx.AsyncClient() as client, asyncio.timeout(timeout):
        while (response := await client.get(f"http://127.0.0.1:{port}/readyz")).status_code != 200:
            assert response.status_code == 503, response.text
            await asyncio.sleep(0.2)
    return response.json()


async def accepted(client: httpx.AsyncClient, url: str, token: str, patience: float = 60.0) -> httpx.Response:
    """GET ``url`` with ``token`` until the service's view of ``whale.tokens`` holds it (or patience ends)."""
    deadline = time.monotonic() + patience
    while True:
        answer = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        if answer.status_code != 401 or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def test_push_subscriptions_order_retry_dead_letter_and_pause(
    stack: WhaleSettings, receiver: Receiver, taps: Any, unique: str
) -> None:
    dlq = taps(topics.DLQ)
    mine = {"field": "subject", "prefix": f"{unique}-"}
    common = {"start": "earliest", "backoff_initial": 0.05, "backoff_max": 0.2, "filter": mine}
    subs = [
        Subscription.model_validate(
            {"id": f"t-{unique}-flaky", "endpoint": f"{receiver.base}/flaky", **common}
        ),
        Subscription.model_validate(
            {"id": f"t-{unique}-down", "endpoint": f"{receiver.base}/down", "max_attempts": 3, **common}
        ),
        Subscription.model_validate(
            {"id": f"t-{unique}-paused", "endpoint": f"{receiver.base}/ok", "paused": True, **common}
        ),
    ]
    settings = Settings(port=free_port(), group_prefix=f"test-dispatcher-{unique}", whale=stack)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    try:
        await apply_subscriptions(stack, subs)

        producer = EventProducer(stack)
        keys = [f"{unique}-a", f"{unique}-b"]
        for seq in range(6):
            for key in keys:
                await producer.send(
                    topics.EVENTS,
                    CloudEvent.create(type="test.push", source="/test/push", subject=key, data={"seq": seq}),
                )
        producer.close()

        await wait_until(lambda: len(receiver.received["flaky"]) >= 12)
        for key in keys:  # order per key survived the retries
            seqs = [r["data"]["seq"] for r in receiver.received["flaky"] if r["headers"]["ce-subject"] == key]
            assert seqs == list(range(6)), key
        first = receiver.received["flaky"][0]["headers"]
        assert (
            first["ce-type"] == "test.push"
            and first["ce-source"] == "/test/push"
            and first["ce-specversion"] == "1.0"
        )
        assert first["content-type"] == "application/json"
        retried = [k for k, n in receiver.attempts.items() if k.startswith("flaky:") and n == 2]
        assert len(retried) == 6  # every odd seq failed once and was retried

        dead = await dlq.await_(lambda e: e.subject in keys, 12, timeout=90)
        reasons = {
            m.header_text("whale_dlq_reason")
            for e, m in dlq.seen
            if e.subject in keys and m.header_text("whale_dlq_subscription") == f"t-{unique}-down"
        }
        assert len(dead) == 12 and len(reasons) == 1
        assert "503 after 3 attempts" in reasons.pop()
        assert all(n == 3 for k, n in receiver.attempts.items() if k.startswith("down:"))

        assert receiver.received["ok"] == []  # paused: nothing delivered
        token = await asyncio.to_thread(admin_token, stack)  # /status needs viewer
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{settings.port}/status"
            assert (await client.get(url)).status_code == 401
            answer = await accepted(client, url, token)  # the token reaches the dispatcher's view first
            assert answer.status_code == 200, answer.text
            status = answer.json()
        assert (await readyz_once_ready(settings.port))["status"] == "ready"
        by_id = {s["id"]: s for s in status["subscriptions"]}
        assert by_id[f"t-{unique}-paused"]["paused"] is True
        assert by_id[f"t-{unique}-flaky"]["delivered"] == 12
        assert by_id[f"t-{unique}-down"]["dead_lettered"] == 12

        await apply_subscriptions(stack, [subs[2].model_copy(update={"paused": False})])  # resume
        await wait_until(lambda: len(receiver.received["ok"]) >= 12)
    finally:  # leave no subscription behind on the shared topic
        stop.set()
        await asyncio.wait_for(task, 60)
        cleanup = EventProducer(stack)
        for sub in subs:
            await delete(cleanup, topics.SUBSCRIPTIONS, sub.id)
        cleanup.close()
