"""Expiry of closed to-dos: items closed longer than the retention are tombstoned on whale.todos and
dropped from the book, open ones never; a re-firing alert then opens a fresh item."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from whale_todo import expiry, metrics
from whale_todo.expiry import Expirer
from whale_todo.settings import Settings
from whale_todo.stage import TodoBook, TodoStage
from whale_todo.store import EXPIRY

from tests.todo.test_incidents import am
from tests.todo.test_stage import Received, alert, announced, stage
from tests.todo.test_work import command
from whale import topics
from whale.errors import DeliveryError
from whale.testing import FakeProducer
from whale.todos import CREATED

DAY = 24 * 3600.0
LATER = time.time() + 31 * DAY  # past the default 30-day retention of anything closed now


def expirer(st: TodoStage, book: TodoBook, producer: FakeProducer, retention: float = 30 * DAY) -> Expirer:
    return Expirer(retention, producer, book, st.lock)


def tombstones(producer: FakeProducer) -> list[str]:
    return [m.key.decode() for t, m in producer.messages if t == topics.TODOS and m.value is None and m.key]


async def opened(st: TodoStage, book: TodoBook, subject: str) -> str:
    await st.handle(Received(alert(subject=subject)))
    return next(str(i["id"]) for i in book.items.values() if i["subject"] == subject)


def test_the_retention_defaults_to_30_days_swept_every_5_minutes() -> None:
    settings = Settings()
    assert (settings.closed_retention, settings.sweep_interval) == (30 * DAY, 300.0)


async def test_closed_items_past_the_retention_are_tombstoned_and_dropped_open_ones_stay(
    tmp_path: Path,
) -> None:
    st, book, producer = stage(tmp_path)
    closed = await opened(st, book, "floor-1")
    kept_open = await opened(st, book, "floor-2")
    claimed = await opened(st, book, "floor-3")
    await st.handle(command(closed, "resolve", comment="fixed"))
    await st.handle(command(claimed, "claim"))
    before = metrics.EXPIRED._value.get()
    sweeper = expirer(st, book, producer)
    assert await sweeper.sweep() == 0  # closed just now: kept
    assert await sweeper.sweep(now=LATER) == 1
    assert tombstones(producer) == [closed]
    assert set(book.items) == {kept_open, claimed}
    assert list(book.store.items(EXPIRY)) == []  # its expiry entry went with it
    assert metrics.EXPIRED._value.get() == before + 1
    assert await sweeper.sweep(now=LATER) == 0  # nothing left to expire
    assert tombstones(producer) == [closed]


async def test_a_reopened_item_is_not_expired_by_its_earlier_closing(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    item = await opened(st, book, "floor-1")
    await st.handle(command(item, "resolve"))
    await st.handle(command(item, "reopen", comment="not fixed"))
    assert await expirer(st, book, producer).sweep(now=LATER) == 0
    assert set(book.items) == {item} and tombstones(producer) == []
    assert list(book.store.items(EXPIRY)) == []  # the stale entry was deleted


async def test_a_re_firing_alert_after_its_closed_item_expired_opens_a_fresh_item(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    await st.handle(Received(am("firing", "ep1")))
    await st.handle(Received(am("resolved", "ep1")))
    [first] = book.items
    assert await expirer(st, book, producer).sweep(now=LATER) == 1
    await st.handle(Received(am("firing", "ep2")))
    [item] = book.items.values()
    assert item["id"] != first and item["status"] == "open" and item.get("reopened") == 0
    assert announced(producer)[-1].data["change"] == "created" and announced(producer)[-1].type == CREATED


async def test_a_sweep_works_through_the_expired_items_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry, "CHUNK", 2)
    st, book, producer = stage(tmp_path)
    for n in range(5):
        await st.handle(command(await opened(st, book, f"floor-{n}"), "resolve"))
    assert await expirer(st, book, producer).sweep(now=LATER) == 5
    assert len(book.items) == 0 and len(tombstones(producer)) == 5


async def test_a_failed_tombstone_keeps_the_item_for_the_next_sweep(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    item = await opened(st, book, "floor-1")
    await st.handle(command(item, "resolve"))
    producer.fail = True
    with pytest.raises(DeliveryError):
        await expirer(st, book, producer).sweep(now=LATER)
    assert set(book.items) == {item}
    producer.fail = False
    assert await expirer(st, book, producer).sweep(now=LATER) == 1


async def test_a_zero_retention_keeps_closed_items_forever(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    await st.handle(command(await opened(st, book, "floor-1"), "resolve"))
    assert await expirer(st, book, producer, retention=0).sweep(now=LATER + 1e9) == 0
    assert len(book.items) == 1
