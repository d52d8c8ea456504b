"""Poller: created/updated/deleted by diffing on a key; the snapshot resumes after a restart."""

from __future__ import annotations

from typing import Any

import httpx
from whale_adapters.config import parse_adapters
from whale_adapters.ingest import IngestWriter
from whale_adapters.poller import Poller, diff, state_key
from whale_adapters.validation import EventValidator

from whale.cloudevent import CloudEvent
from whale.testing import FakeProducer


class State:
    def __init__(self) -> None:
        self.records: dict[str, CloudEvent] = {}

    def get(self, key: str) -> CloudEvent | None:
        return self.records.get(key)


def test_diff_reports_created_updated_deleted_in_key_order() -> None:
    changes = diff(
        {"a": "h1", "b": "h2", "c": "h3"}, {"a": ("h1", {}), "b": ("h9", {"v": 2}), "d": ("h4", {})}
    )
    assert [(c.kind, c.key) for c in changes] == [("updated", "b"), ("created", "d"), ("deleted", "c")]


async def test_polls_emit_each_change_once_and_a_new_poller_resumes_from_the_saved_snapshot() -> None:
    items: list[dict[str, Any]] = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"items": items}})

    config = parse_adapters(
        {
            "pollers": [
                {
                    "name": "inv",
                    "url": "http://inventory.test/items",
                    "items": "$.data.items",
                    "key": "$.id",
                    "type_prefix": "inv.item",
                    "source": "/test/poller",
                }
            ]
        }
    ).pollers[0]
    producer = FakeProducer()
    writer = IngestWriter(producer, EventValidator(None))  # type: ignore[arg-type]
    state = State()
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as client:
        poller = Poller(config, writer, state, client)
        first = await poller.poll_once()
        assert [(e.type, e.subject) for e in first] == [("inv.item.created", "1"), ("inv.item.created", "2")]
        assert await poller.poll_once() == []  # nothing changed
        saved = [(e, key) for topic, e, key in producer.sent if topic == "whale.adapters.state"]
        assert len(saved) == 1 and saved[0][1] == state_key("inv")
        state.records[state_key("inv")] = saved[0][0]  # what a restarted poller reads
        items[0] = {"id": 1, "name": "renamed"}
        del items[1]
        items.append({"id": 3, "name": "c"})
        restarted = Poller(config, writer, state, client)
        second = await restarted.poll_once()
        assert [(e.type, e.subject) for e in second] == [
            ("inv.item.updated", "1"),
            ("inv.item.created", "3"),
            ("inv.item.deleted", "2"),
        ]
        assert second[0].data == {"id": 1, "name": "renamed"}
    assert len({e.id for e in first + second}) == 5
    ingested = [e for topic, e, _ in producer.sent if topic == "whale.ingest"]
    assert len(ingested) == 5
