"""The dedupe stage's decisions (no Kafka): first copy forwarded, copies within the window dropped,
copies after the window forwarded again, unreadable messages dead-lettered, undo on failed sends."""

from __future__ import annotations

from pathlib import Path

from whale_dedupe.app import DedupeStage
from whale_dedupe.settings import Settings

from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale.testing import FakeProducer


class Msg:
    def __init__(self, message: KafkaMessage, stamp: int, partition: int = 0, offset: int = 0) -> None:
        self._m, self._stamp, self._p, self._o = message, stamp, partition, offset

    def key(self) -> bytes | None:
        return self._m.key

    def value(self) -> bytes | None:
        return self._m.value

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._m.headers)

    def timestamp(self) -> tuple[int, int]:
        return (1, self._stamp)

    def topic(self) -> str:
        return "whale.ingest"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


def stage(tmp_path: Path) -> DedupeStage:
    settings = Settings(whale=WhaleSettings(kafka_bootstrap="127.0.0.1:1"), window=60)
    store = LocalStore(tmp_path / "dedupe", {"stage": "dedupe"}, StoreSettings(dir=tmp_path, cache_mb=1))
    return DedupeStage(settings, producer=None, store=store)  # type: ignore[arg-type]


def test_window_decides_forward_or_drop(tmp_path: Path) -> None:
    s = stage(tmp_path)
    event = CloudEvent.create(type="t", source="urn:s", subject="host-1")
    msg = to_binary(event, key=f"urn:s\n{event.id}")
    decisions, _ = s._decide([Msg(msg, 1_000), Msg(msg, 30_000), Msg(msg, 61_001)])
    assert [d.forward is not None for d in decisions] == [True, False, True]
    assert decisions[0].forward is not None and decisions[0].forward.key == b"host-1"  # the event's own key


def test_unreadable_messages_are_dead_lettered_with_the_reason(tmp_path: Path) -> None:
    s = stage(tmp_path)
    decisions, _ = s._decide([Msg(KafkaMessage(b"k", b"junk", ()), 5)])
    assert decisions[0].forward is None and decisions[0].dead_letter is not None
    assert (decisions[0].dead_letter.header_text("whale_dlq_reason") or "").startswith("unreadable")


async def test_a_failed_forward_leaves_no_trace_in_the_window(tmp_path: Path) -> None:
    """Otherwise the replayed event would be taken for a duplicate and lost."""
    s = stage(tmp_path)
    s._producer = FakeProducer(fail=True)  # type: ignore[assignment]
    s.stop()  # give up after the first attempt instead of retrying
    event = CloudEvent.create(type="t", source="urn:s")
    assert await s._process([Msg(to_binary(event), 1_000, partition=2)]) is False
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
