"""The live inventory: hosts as records of the compacted ``whale.inventory`` topic.

Key = host name, data = :meth:`whale.inventory.Host.record` (credential *references*, never values),
a tombstone when the host is gone. :class:`Publisher` (``whale hosts publish``) writes it from
inventory files and HTTP sources; :class:`LiveInventory` (the executor, enrichment, ``whale hosts
list``) reads it and sees every change as it lands, no restart needed.

Publishing (one publisher owns the topic): every round the wanted hosts are computed (files first,
then the HTTP sources in order; a name already taken is skipped, logged and counted), each host whose
record differs from the topic's is written, and every host on the topic that is no longer wanted is
tombstoned. A source whose poll fails keeps its previous hosts (a CMDB outage never empties the
inventory); a bad file fails the round and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog

from whale import compacted
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.errors import WhaleError
from whale.inventory import HOST_RECORD, Host, Inventory, InventoryError, host_from_record, load_inventory
from whale.inventory_http import HttpSource, skipped
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.topics import BY_NAME, INVENTORY, TopicSpec

log = structlog.get_logger(__name__)
SOURCE = "/inventory/publisher"


class LiveInventory(Inventory):
    """Fixed hosts (the files given to this process) plus the hosts of ``whale.inventory``, followed
    live. A fixed host wins over a topic record of the same name; a topic record that is not a valid
    host is skipped (logged, counted in ``whale_inventory_records_skipped_total``)."""

    def __init__(
        self, settings: WhaleSettings, fixed: Inventory | None = None, *, topic: str = INVENTORY
    ) -> None:
        fixed = fixed or Inventory()
        super().__init__(fixed.hosts.values(), sources=[*fixed.sources, topic])
        self.topic = topic
        self._fixed = dict(fixed.hosts)
        self._view = CompactedView(settings, topic, on_change=self._changed)
        self._rejected: dict[str, str] = {}

    async def start(self, timeout: float = 60.0) -> None:
        """Read the topic (returns once caught up), then keep following it."""
        await self._view.start(timeout)
        self._rebuild()

    async def stop(self) -> None:
        await self._view.stop()

    def _changed(self, key: str, event: CloudEvent | None) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        hosts = dict(self._fixed)
        for key, event in sorted(self._view.items().items()):
            try:
                host = host_from_record(key, event.data)
            except InventoryError as exc:
                if self._rejected.get(key) != exc.reason:  # once per bad record, not at every rebuild
                    self._rejected[key] = exc.reason
                    skipped(self.topic, field=exc.field, reason=exc.reason)
                continue
            self._rejected.pop(key, None)
            if key not in self._fixed:
                hosts[key] = host
        self.replace(hosts)


@dataclass
class Round:
    """What one publishing round did."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)
    hosts: int = 0


class Publisher:
    """Publishes the hosts of inventory files and HTTP sources on ``whale.inventory``."""

    def __init__(
        self,
        producer: EventProducer,
        view: CompactedView,
        *,
        files: Sequence[Path] = (),
        sources: Sequence[HttpSource] = (),
        client: httpx.AsyncClient | None = None,
        topic: str = INVENTORY,
    ) -> None:
        self.topic = topic
        self._producer = producer
        self._view = view
        self.files = list(files)
        self.sources = list(sources)
        self._client = client
        self._last: dict[str, list[Host]] = {}  # per source: the hosts of its last good poll

    async def publish_once(self) -> Round:
        """One round: files re-read, sources polled, the topic brought to match (see the module doc)."""
        done = Round()
        wanted: dict[str, Host] = dict(load_inventory(self.files).hosts) if self.files else {}
        client = self._client or httpx.AsyncClient()
        try:
            for source in self.sources:
                try:
                    hosts = await source.fetch(client)
                except WhaleError as exc:
                    done.failed_sources.append(source.name)
                    log.warning("inventory_source_failed", source=source.name, error=exc.message)
                    hosts = self._last.get(source.name) or self._on_topic(source.config.origin)
                else:
                    self._last[source.name] = hosts
                _merge(wanted, hosts)
        finally:
            if self._client is None:
                await client.aclose()
        current = self._view.items()
        for name, host in sorted(wanted.items()):
            record = host.record()
            present = current.get(name)
            if present is None or present.data != record:
                event = CloudEvent.create(type=HOST_RECORD, source=SOURCE, subject=name, data=record)
                await compacted.put(self._producer, self.topic, name, event)
                done.written.append(name)
        for name in sorted(set(current) - set(wanted)):
            await compacted.delete(self._producer, self.topic, name)
            done.deleted.append(name)
        done.hosts = len(wanted)
        log.info(
            "inventory_published",
            hosts=done.hosts,
            written=len(done.written),
            deleted=len(done.deleted),
            failed_sources=done.failed_sources,
        )
        return done

    def _on_topic(self, origin: str) -> list[Host]:
        """The hosts the topic holds from ``origin`` (a source that failed before it ever answered)."""
        out = []
        for key, event in self._view.items().items():
            if isinstance(event.data, Mapping) and event.data.get("origin") == origin:
                with contextlib.suppress(InventoryError):
                    out.append(host_from_record(key, event.data))
        return out

    async def run(self, stop: asyncio.Event, *, interval: float | None = None) -> None:
        """Publish every ``interval`` seconds (default: the shortest source interval, else 60) until
        ``stop``; a failed round (a bad file, Kafka down) is logged and tried again next time."""
        every = interval or min((s.config.interval for s in self.sources), default=60.0)
        while not stop.is_set():
            try:
                await self.publish_once()
            except WhaleError as exc:
                log.error("inventory_round_failed", error=exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)


def _merge(wanted: dict[str, Host], hosts: Iterable[Host]) -> None:
    for host in hosts:
        if host.name in wanted:
            skipped(
                host.source,
                field=f"hosts.{host.name}",
                reason=f"already defined by {wanted[host.name].source}",
            )
            continue
        wanted[host.name] = host


def topic_spec(topic: str = INVENTORY) -> TopicSpec:
    """The spec of the inventory topic (another name, e.g. a test's, gets the same shape)."""
    return dataclasses.replace(BY_NAME[INVENTORY], name=topic)


def publish(
    settings: WhaleSettings,
    *,
    files: Sequence[Path] = (),
    source_files: Sequence[Path] = (),
    watch: bool = False,
    interval: float | None = None,
    metrics_port: int | None = None,
    topic: str = INVENTORY,
) -> int:
    """``whale hosts publish``: one round (exit 0, or 1 when a source failed), or rounds until stopped."""
    from whale.admin import ensure_topics
    from whale.health import serve_health
    from whale.inventory_http import FAMILIES, load_sources
    from whale.logging import configure_logging
    from whale.metrics import process_registry
    from whale.runtime import run

    configure_logging(settings, service="inventory-publisher")  # logs on stderr, the summary on stdout
    sources = [s for path in source_files for s in load_sources(path)]
    if files:
        load_inventory(files)  # a bad file is refused before anything is written
    outcome: list[Round] = []

    async def serve(stop: asyncio.Event) -> None:
        await asyncio.to_thread(ensure_topics, settings, [topic_spec(topic)])
        producer = EventProducer(settings, client_id="whale-inventory-publisher")
        view = CompactedView(settings, topic)
        health = None
        try:
            await view.start()
            publisher = Publisher(producer, view, files=files, sources=sources, topic=topic)
            if not watch:
                outcome.append(await publisher.publish_once())
                return
            if metrics_port is not None:
                health = await serve_health("127.0.0.1", metrics_port, registry=process_registry(FAMILIES))
            await publisher.run(stop, interval=interval)
        finally:
            if health is not None:
                health.close()
            await view.stop()
            await asyncio.to_thread(producer.close)

    run(serve, settings.event_loop)
    if outcome:
        done = outcome[0]
        print(
            f"{done.hosts} hosts: {len(done.written)} written, {len(done.deleted)} deleted"
            + (f"; sources failed: {', '.join(done.failed_sources)}" if done.failed_sources else "")
        )
        return 1 if done.failed_sources else 0
    return 0
