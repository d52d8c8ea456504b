"""``whale run adapters`` on real Kafka: Alertmanager and webhook calls become the right events on
whale.ingest, a bad signature is refused, and the poller emits each change once, also across a restart."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from whale_adapters.alertmanager import FIRING, RESOLVED
from whale_adapters.app import serve
from whale_adapters.config import load_adapters
from whale_adapters.ingest import IngestWriter
from whale_adapters.poller import Poller
from whale_adapters.settings import Settings
from whale_adapters.validation import EventValidator
from whale_adapters.webhook import sign

from tests.ports import free_port
from whale import topics
from whale.compacted import CompactedView
from whale.producer import EventProducer
from whale.settings import WhaleSettings

pytestmark = pytest.mark.integration


def alert(fingerprint: str, status: str = "firing", starts: str = "2026-11-23T10:00:00Z") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": fingerprint},
        "annotations": {"summary": "disk full"},
        "startsAt": starts,
        "endsAt": "2026-11-23T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": alerts[0]["status"],
        "receiver": "whale",
        "groupKey": "g",
        "alerts": list(alerts),
    }


class Inventory:
    """A real HTTP API the poller reads (the items can be changed by the test)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        inventory = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"items": inventory.items}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/items"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def inventory() -> Iterator[Inventory]:
    inv = Inventory()
    yield inv
    inv.server.shutdown()


@pytest.fixture
def config_file(tmp_path: Path, unique: str, inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_IT_WEBHOOK_SECRET", "it-secret")
    doc = {
        "webhooks": [
            {
                "name": "shop",
                "secret_env": "TEST_IT_WEBHOOK_SECRET",
                "source": f"/test/shop/{unique}",
                "type": "shop.order.{{ body.status }}",
                "id": "$.delivery",
                "subject": "$.order",
            }
        ],
        "pollers": [
            {
                "name": f"inv-{unique}",
                "url": inventory.url,
                "interval": 3600,
                "items": "$.items",
                "key": "$.sku",
                "type_prefix": "test.inventory.item",
                "source": f"/test/poller/{unique}",
            }
        ],
    }
    path = tmp_path / "adapters.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
async def service(stack: WhaleSettings, config_file: Path, taps: Any) -> AsyncIterator[str]:
    settings = Settings(
        port=free_port(),
        alertmanager_token="it-token",
        alertmanager_source="/test/am",
        config=config_file,
        whale=stack,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, load_adapters(config_file)))
    base = f"http://127.0.0.1:{settings.port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if task.done():
                task.result()
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    yield base
    stop.set()
    await asyncio.wait_for(task, 60)


async def test_alertmanager_notifications_become_one_event_per_alert_with_stable_ids(
    service: str, taps: Any, unique: str
) -> None:
    tap = taps(topics.INGEST)
    fp1, fp2 = f"fp1-{unique}", f"fp2-{unique}"
    auth = {"Authorization": "Bearer it-token"}
    async with httpx.AsyncClient(base_url=service) as client:
        group = notification(alert(fp1), alert(fp2))
        assert (await client.post("/alertmanager", json=group)).status_code == 401  # no token
        first = await client.post("/alertmanager", json=group, headers=auth)
        assert first.status_code == 202
        resent = await client.post("/alertmanager", json=group, headers=auth)  # same notification again
        assert resent.json()["ids"] == first.json()["ids"]
        resolved = await client.post("/alertmanager", json=notification(alert(fp1, "resolved")), headers=auth)
        assert resolved.status_code == 202
    mine = await tap.await_(lambda e: e.subject in (fp1, fp2), 5, settle=1.0)
    # whale.ingest is keyed by (source, id): order across partitions is not defined, so compare sets
    assert sorted((e.type, e.subject) for e in mine) == sorted(
        [(FIRING, fp1), (FIRING, fp2), (FIRING, fp1), (FIRING, fp2), (RESOLVED, fp1)]
    )
    ids: dict[tuple[str, str | None], set[str]] = {(e.type, e.subject): set() for e in mine}
    for e in mine:
        ids[(e.type, e.subject)].add(e.id)
    assert all(len(v) == 1 for v in ids.values())  # the re-send kept its ids: the dedupe stage drops it
    assert ids[(RESOLVED, fp1)] != ids[(FIRING, fp1)]
    mine.sort(key=lambda e: (e.type, e.subject or ""))
    assert mine[0].data["labels"] == {"alertname": "DiskFull", "instance": fp1}
    assert mine[-1].type == RESOLVED and mine[-1].data["endsAt"] == "2026-11-23T11:00:00Z"


async def test_signed_webhooks_are_published_and_a_bad_signature_is_refused(
    service: str, taps: Any, unique: str
) -> None:
    tap = taps(topics.INGEST)
    good = json.dumps({"delivery": f"d-{unique}", "status": "paid", "order": "o-1"}).encode()
    forged = json.dumps({"delivery": f"forged-{unique}", "status": "paid", "order": "o-2"}).encode()
    async with httpx.AsyncClient(base_url=service) as client:
        ok = await client.post(
            "/webhooks/shop",
            content=good,
            headers={"X-Whale-Signature": "sha256=" + sign(b"it-secret", good)},
        )
        assert ok.status_code == 202
        refused = await client.post(
            "/webhooks/shop",
            content=forged,
            headers={"X-Whale-Signature": "sha256=" + sign(b"wrong", forged)},
        )
        assert refused.status_code == 401
        assert "signature does not match" in refused.json()["message"]
    mine = await tap.await_(lambda e: e.source == f"/test/shop/{unique}", 1, settle=1.0)
    assert [(e.id, e.type, e.subject) for e in mine] == [(f"d-{unique}", "shop.order.paid", "o-1")]


async def test_the_poller_emits_each_change_once_also_across_a_restart(
    stack: WhaleSettings, config_file: Path, inventory: Inventory, taps: Any, unique: str
) -> None:
    tap = taps(topics.INGEST)
    config = load_adapters(config_file).pollers[0]
    producer = EventProducer(stack)
    writer = IngestWriter(producer, EventValidator(None))

    async def fresh_poller() -> tuple[Poller, CompactedView]:
        state = CompactedView(stack, topics.ADAPTER_STATE)  # a restarted process re-reads its state
        await state.start()
        return Poller(config, writer, state, client), state

    inventory.items = [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]
    async with httpx.AsyncClient() as client:
        poller, state = await fresh_poller()
        await poller.poll_once()
        await poller.poll_once()  # unchanged: nothing
        await state.stop()
        inventory.items = [{"sku": "a", "qty": 5}, {"sku": "c", "qty": 3}]
        restarted, state = await fresh_poller()
        await restarted.poll_once()
        await restarted.poll_once()
        await state.stop()
        again, state = await fresh_poller()
        await again.poll_once()  # a second restart without changes emits nothing
        await state.stop()
    producer.close()
    mine = await tap.await_(lambda e: e.source == f"/test/poller/{unique}", 5, settle=2.0)
    assert sorted((e.type, e.subject) for e in mine) == [
        ("test.inventory.item.created", "a"),
        ("test.inventory.item.created", "b"),
        ("test.inventory.item.created", "c"),
        ("test.inventory.item.deleted", "b"),
        ("test.inventory.item.updated", "a"),
    ]
    assert [e.data for e in mine if e.type.endswith("updated")] == [{"sku": "a", "qty": 5}]
