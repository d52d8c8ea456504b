"""The poller: GET a JSON API on an interval and emit ``<prefix>.created|updated|deleted`` by diffing
the items on a key.

Its snapshot (item key -> content hash, plus a generation number) is a record of the compacted
``whale.adapters.state`` topic (key ``poller:<name>``), written after the change events were
acknowledged, so a restart resumes from the last snapshot instead of re-emitting everything. Event
ids are derived from (poller, generation, key, change, content hash): if the process dies between
emitting and saving, the next run emits the same ids again and the event center's dedupe drops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import structlog

from whale import topics
from whale.cloudevent import CloudEvent
from whale.compacted import put
from whale_adapters import metrics
from whale_adapters.config import PollerConfig
from whale_adapters.ingest import IngestWriter
from whale_adapters.jsonpath import Missing, compile_path

log = structlog.get_logger(__name__)
STATE_TYPE = "whale.adapter.poller.state"


class StateSource(Protocol):
    def get(self, key: str) -> CloudEvent | None: ...


def state_key(name: str) -> str:
    return f"poller:{name}"


def content_hash(item: Any) -> str:
    return hashlib.sha256(
        json.dumps(item, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()[:32]


@dataclass(slots=True)
class Snapshot:
    generation: int = 0
    items: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: CloudEvent | None) -> Snapshot | None:
        if record is None or not isinstance(record.data, dict):
            return None
        items = record.data.get("items")
        if not isinstance(items, dict):
            return None
        return cls(int(record.data.get("generation", 0)), {str(k): str(v) for k, v in items.items()})


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # created | updated | deleted
    key: str
    item: Any
    digest: str


def diff(previous: dict[str, str], current: dict[str, tuple[str, Any]]) -> list[Change]:
    """Changes from ``previous`` (key -> hash) to ``current`` (key -> (hash, item)), in key order."""
    changes: list[Change] = []
    for key in sorted(current):
        digest, item = current[key]
        if key not in previous:
            changes.append(Change("created", key, item, digest))
        elif previous[key] != digest:
            changes.append(Change("updated", key, item, digest))
    for key in sorted(set(previous) - set(current)):
        changes.append(Change("deleted", key, {"key": key}, previous[key]))
    return changes


class Poller:
    """One configured poller."""

    def __init__(
        self, config: PollerConfig, writer: IngestWriter, state: StateSource, client: httpx.AsyncClient
    ) -> None:
        self.config = config
        self.name = config.name
        self._writer = writer
        self._client = client
        self._key_path = compile_path(config.key, field=f"pollers.{config.name}.key")
        self._headers = config.request_headers()
        self.snapshot = Snapshot.from_record(state.get(state_key(config.name))) or Snapshot()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set; a failed poll is retried next time."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception as exc:  # nothing stops the service: log, count, retry next interval
                metrics.POLLS.labels(poller=self.name, outcome="failed").inc()
                log.warning("poll_failed", poller=self.name, error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.interval)

    async def poll_once(self) -> list[CloudEvent]:
        """Fetch, diff, emit the changes (acknowledged), then save the snapshot. Returns the events."""
        current = self._items(await self.config.get_json(self._client, self._headers))
        changes = diff(self.snapshot.items, current)
        if not changes:
            metrics.POLLS.labels(poller=self.name, outcome="ok").inc()
            return []
        generation = self.snapshot.generation + 1
        events = [self._event(generation, change) for change in changes]
        for event in events:
            await self._writer.publish_or_dead_letter(event, adapter=f"poller:{self.name}")
        new = Snapshot(generation, {key: digest for key, (digest, _) in current.items()})
        record = CloudEvent.create(
            type=STATE_TYPE,
            source=f"/adapters/poller/{self.name}",
            subject=state_key(self.name),
            data={
                "poller": self.name,
                "url": self.config.url,
                "generation": new.generation,
                "items": new.items,
                "polled_at": datetime.now(UTC).isoformat(),
            },
        )
        await put(self._writer.producer, topics.ADAPTER_STATE, state_key(self.name), record)
        self.snapshot = new
        metrics.POLLS.labels(poller=self.name, outcome="ok").inc()
        log.info("poll_changes", poller=self.name, changes=len(changes), generation=generation)
        return events

    def _items(self, doc: Any) -> dict[str, tuple[str, Any]]:
        items = self.config.records(doc, label=f"poller {self.name}")
        out: dict[str, tuple[str, Any]] = {}
        for i, item in enumerate(items):
            try:
                key = self._key_path.find(item)
            except Missing:
                log.warning("poll_item_without_key", poller=self.name, index=i, key=self.config.key)
                continue
            out[str(key)] = (content_hash(item), item)
        return out

    def _event(self, generation: int, change: Change) -> CloudEvent:
        seed = f"{self.name}|{generation}|{change.key}|{change.kind}|{change.digest}"
        return CloudEvent.create(
            type=f"{self.config.type_prefix}.{change.kind}",
            source=self.config.source,
            id="poll-" + hashlib.sha256(seed.encode()).hexdigest()[:40],
            subject=change.key,
            data=change.item,
        )
