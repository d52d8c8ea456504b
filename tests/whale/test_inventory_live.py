"""The live inventory without Kafka: what a publishing round writes and tombstones, a failed source
keeping its hosts, the view's precedence (own files win) and bad topic records skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import yaml

from whale.binding import KafkaMessage
from whale.cloudevent import CloudEvent
from whale.inventory import HOST_RECORD, Host, Inventory
from whale.inventory_http import SKIPPED, HttpSource, HttpSourceConfig
from whale.inventory_live import LiveInventory, Publisher
from whale.settings import WhaleSettings


class View:
    """A compacted view's items, as the producer below changes them."""

    def __init__(self) -> None:
        self.records: dict[str, CloudEvent] = {}

    def items(self) -> dict[str, CloudEvent]:
        return dict(self.records)


class Producer:
    def __init__(self, view: View) -> None:
        self.view = view
        self.sent: list[tuple[str, str | None]] = []

    async def send(self, topic: str, event: CloudEvent, *, key: str) -> None:
        self.view.records[key] = event
        self.sent.append(("put", key))

    async def send_message(self, topic: str, message: KafkaMessage) -> None:
        key = message.key.decode() if message.key else ""
        self.view.records.pop(key, None)
        self.sent.append(("delete", key))


def record(host: Host) -> CloudEvent:
    return CloudEvent.create(type=HOST_RECORD, source="/t", subject=host.name, data=host.record())


def source(records: list[dict[str, Any]] | None) -> tuple[HttpSource, httpx.AsyncClient]:
    config = HttpSourceConfig(
        name="cmdb",
        url="http://cmdb.test/h",
        map={"name": "$.n", "address": "$.ip"},
        defaults={"user": "ops"},
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503) if records is None else httpx.Response(200, json=records)

    return HttpSource(config, where="t"), httpx.AsyncClient(transport=httpx.MockTransport(answer))


def test_a_round_writes_changed_hosts_tombstones_gone_ones_and_a_failed_source_keeps_its_hosts(
    tmp_path: Path,
) -> None:
    files = tmp_path / "hosts.yaml"
    files.write_text(yaml.safe_dump({"defaults": {"user": "ops"}, "hosts": {"file-1": {}, "dup": {}}}))
    view = View()
    stale = Host(name="stale", address="10.9.9.9", user="ops", source="http:old")
    view.records["stale"] = record(stale)
    producer = Producer(view)

    async def rounds() -> None:
        cmdb, client = source([{"n": "cmdb-1", "ip": "10.0.0.1"}, {"n": "dup", "ip": "10.0.0.2"}])
        publisher = Publisher(producer, view, files=[files], sources=[cmdb], client=client)  # type: ignore[arg-type]
        done = await publisher.publish_once()
        assert (done.written, done.deleted, done.hosts) == (["cmdb-1", "dup", "file-1"], ["stale"], 3)
        assert view.records["dup"].data["origin"] == str(files)  # the file came first
        assert (await publisher.publish_once()).written == []  # nothing changed: nothing written
        down, client = source(None)
        publisher.sources = [down]
        publisher._last = {"cmdb": publisher._last["cmdb"]}
        publisher._client = client
        done = await publisher.publish_once()
        assert (done.written, done.deleted, done.failed_sources) == ([], [], ["cmdb"])
        assert "cmdb-1" in view.records

    asyncio.run(rounds())


def test_the_view_adds_topic_hosts_under_the_own_files_and_skips_a_bad_record_once() -> None:
    own = Host(name="vm-1", address="10.0.0.1", user="ops", source="/etc/whale/inventory.yaml")
    live = LiveInventory(WhaleSettings(), Inventory([own]), topic="whale.inventory.t")
    view = View()
    live._view = view  # type: ignore[assignment]
    view.records["vm-1"] = record(own.model_copy(update={"address": "10.6.6.6", "source": "http:cmdb"}))
    view.records["vm-2"] = record(Host(name="vm-2", address="10.0.0.2", user="ops", source="http:cmdb"))
    bad = Host(name="vm-3", address="10.0.0.3", user="ops").record()
    view.records["vm-3"] = CloudEvent.create(type=HOST_RECORD, source="/t", data={**bad, "port": 0})
    before = SKIPPED.labels(origin="whale.inventory.t")._value.get()
    live._rebuild()
    live._rebuild()
    assert sorted(live.hosts) == ["vm-1", "vm-2"]
    assert live.get("vm-1").address == "10.0.0.1"  # the executor's own file wins
    assert SKIPPED.labels(origin="whale.inventory.t")._value.get() - before == 1
    del view.records["vm-2"]
    live._changed("vm-2", None)
    assert sorted(live.hosts) == ["vm-1"]
