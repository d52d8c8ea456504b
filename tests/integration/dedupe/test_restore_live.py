"""The dedupe window's restore on a real changelog: a lost store is rebuilt (a key's last record
wins, tombstones delete, times before the window are skipped) and an intact one reads only the
records after its applied offsets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from whale_dedupe.window import DedupeWindow

from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings

pytestmark = pytest.mark.integration
WINDOW_MS = 3600 * 1000


@pytest.fixture
def changelog(stack: WhaleSettings) -> Iterator[str]:
    admin = AdminClient(stack.kafka_config())
    topic = f"test.dedupe.restore.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    yield topic
    admin.delete_topics([topic])[topic].result(30)


def write(stack: WhaleSettings, topic: str, records: list[tuple[int, str, bytes | None]]) -> None:
    producer = Producer(stack.kafka_config())
    for partition, key, value in records:
        producer.produce(topic, key=key.encode(), value=value, partition=partition)
    assert producer.flush(30) == 0


def open_window(tmp_path: Path) -> DedupeWindow:
    store = LocalStore(tmp_path / "dedupe", {"stage": "dedupe"}, StoreSettings(dir=tmp_path, cache_mb=1))
    return DedupeWindow(store, WINDOW_MS)


def seen(window: DedupeWindow, partition: int, key: str) -> int | None:
    return window.seen(window.store.batch(), partition, key)


def test_a_lost_store_is_rebuilt_and_an_intact_one_reads_only_what_is_new(
    stack: WhaleSettings, changelog: str, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    stamp = str(now).encode()
    write(
        stack,
        changelog,
        [
            (0, "a", stamp),
            (0, "old", str(now - 2 * WINDOW_MS).encode()),  # before the window: skipped
            (1, "gone", stamp),
            (1, "gone", None),  # a tombstone deletes the key
            (2, "again", str(now - 1000).encode()),
            (2, "again", stamp),  # a key's last record wins
        ],
    )
    window = open_window(tmp_path)
    assert window.store.rebuilt
    assert window.restore(stack.kafka_config(), changelog, [0, 1, 2]) == 6
    assert seen(window, 0, "a") == now and seen(window, 2, "again") == now
    assert seen(window, 0, "old") is None and seen(window, 1, "gone") is None
    assert seen(window, 1, "a") is None  # keys are per partition
    assert window.store.offsets() == {0: 2, 1: 2, 2: 2}
    window.store.close()

    write(stack, changelog, [(1, "b", stamp)])
    resumed = open_window(tmp_path)
    assert not resumed.store.rebuilt
    assert resumed.restore(stack.kafka_config(), changelog, [0, 1, 2]) == 1  # only the new record
    assert seen(resumed, 1, "b") == now and seen(resumed, 0, "a") == now
    assert resumed.purge(now + 1) == 3  # the time index was written with the keys: a, again, b
    assert seen(resumed, 0, "a") is None
    resumed.store.close()
