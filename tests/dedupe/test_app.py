"""The dedupe stage's decisions (no Kafka): first copy forwarded, copies within the window dropped,
copies after the window forwarded again, undo on failed sends (unreadable messages are the consume
loop's: tests/whale/test_consumer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from whale_dedupe.app import DedupeStage
from whale_dedupe.settings import Settings

from whale.binding import KafkaMessage, from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.consumer import Received
from whale.errors import DeliveryError
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale.testing import FakeProducer


def received(message: KafkaMessage, stamp: int, partition: int = 0, offset: int = 0) -> Received:
    """A decoded ingest record, as the consume loop hands it out."""
    return Received(from_kafka(message), "whale.ingest", partition, offset, message, stamp)


def stage(tmp_path: Path) -> DedupeStage:
    settings = Settings(whale=WhaleSettings(kafka_bootstrap="127.0.0.1:1"), window=60)
    store = LocalStore(tmp_path / "dedupe", {"stage": "dedupe"}, StoreSettings(dir=tmp_path, cache_mb=1))
    return DedupeStage(settings, producer=None, store=store)  # type: ignore[arg-type]


def test_window_decides_forward_or_drop(tmp_path: Path) -> None:
    s = stage(tmp_path)
    event = CloudEvent.create(type="t", source="urn:s", subject="host-1")
    msg = to_binary(event, key=f"urn:s\n{event.id}")
    decisions, _ = s._decide([received(msg, 1_000), received(msg, 30_000), received(msg, 61_001)])
    assert [d.forward is not None for d in decisions] == [True, False, True]
    assert decisions[0].forward is not None and decisions[0].forward.key == b"host-1"  # the event's own key


async def test_a_failed_forward_leaves_no_trace_in_the_window(tmp_path: Path) -> None:
    """Otherwise the replayed event would be taken for a duplicate and lost."""
    s = stage(tmp_path)
    s._producer = FakeProducer(fail=True)  # type: ignore[assignment]
    event = CloudEvent.create(type="t", source="urn:s")
    with pytest.raises(DeliveryError):  # the consume loop retries the batch
        await s._process([received(to_binary(event), 1_000, partition=2)])
    assert list(s.window.store.items()) == []


def test_expiry_deletes_the_keys_first_seen_before_the_window(tmp_path: Path) -> None:
    s = stage(tmp_path)
    batch = s.window.store.batch()
    s.window.remember(batch, 0, "urn:s\nold", 1_000)
    s.window.remember(batch, 1, "urn:s\nnew", 90_000)
    s.window.remember(batch, 0, "urn:s\nagain", 2_000)
    s.window.remember(batch, 0, "urn:s\nagain", 95_000)  # seen again after its window: kept
    s.window.store.commit(batch)
    assert s.window.purge(oldest=30_000) == 1
    after = s.window.store.batch()
    assert s.window.seen(after, 0, "urn:s\nold") is None
    assert s.window.seen(after, 1, "urn:s\nnew") == 90_000
    assert s.window.seen(after, 0, "urn:s\nagain") == 95_000
    assert s.window.purge(oldest=30_000) == 0
