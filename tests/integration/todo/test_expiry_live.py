"""Expiry of closed to-dos on the real ``whale.todos``: the sweep's tombstone removes the item from the
event center's ``/todos`` reader and from a book rebuilt from the topic, and the alert firing again
opens a fresh item."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from whale_event_center.errors import NotFound
from whale_event_center.todo_api import TodoReader
from whale_todo.expiry import Expirer
from whale_todo.settings import Settings
from whale_todo.stage import TodoBook, TodoStage, load_rules
from whale_todo.store import TodoLoader, last_id

from tests.todo.test_incidents import am
from tests.todo.test_stage import Received
from whale import topics
from whale.compacted import CompactedView
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale.todos import OPEN_STATES

pytestmark = pytest.mark.integration
LATER = time.time() + 31 * 24 * 3600.0  # past the default 30-day retention


async def test_an_expired_item_is_tombstoned_gone_from_the_api_and_a_rebuilt_book_and_fires_anew(
    stack: WhaleSettings, tmp_path: Path
) -> None:
    settings = Settings(whale=stack)
    state = StoreSettings(dir=tmp_path / "state", cache_mb=4)
    book = TodoBook(settings, LocalStore(tmp_path / "book", {"stage": "todo"}, state))
    producer = EventProducer(stack, client_id="test-todo-expiry")
    stage = TodoStage(settings, producer, load_rules(None), book)
    reader = TodoReader(CompactedView(stack, topics.TODOS))
    fingerprint = {"subject": uuid.uuid4().hex}  # this test's own alert on the shared topic
    firing = am("firing", "ep1").model_copy(update=fingerprint)
    resolved = am("resolved", "ep1").model_copy(update=fingerprint)
    try:
        await stage.handle(Received(firing))
        await stage.handle(Received(resolved))
        [(item_id, item)] = book.items.items()
        assert item["status"] == "resolved"
        view = await reader.ready()
        assert await asyncio.to_thread(view.wait_for, lambda v: item_id in v, 30)
        assert (await reader.get(item_id))["status"] == "resolved"

        assert await Expirer(settings.closed_retention, producer, book, stage.lock).sweep(now=LATER) == 1
        assert await asyncio.to_thread(view.wait_for, lambda v: item_id not in v, 30)
        with pytest.raises(NotFound):
            await reader.get(item_id)
        assert item_id not in {i["id"] for i in await reader.items()}

        rebuilt = TodoLoader(stack, state, OPEN_STATES)  # a new store, rebuilt from the topic
        await rebuilt.start()
        await rebuilt.stop()
        assert rebuilt.store is not None and rebuilt.store.rebuilt
        assert rebuilt.store.get(b"i" + item_id.encode()) is None
        assert last_id(rebuilt.store.batch(), item["key"]) is None
        rebuilt.store.close()

        again = am("firing", "ep2").model_copy(update=fingerprint)
        await stage.handle(Received(again))
        [(new_id, new_item)] = book.items.items()
        assert new_id != item_id and new_item["status"] == "open" and new_item["reopened"] == 0
        assert await asyncio.to_thread(view.wait_for, lambda v: new_id in v, 30)
    finally:
        await reader.view.stop()
        book.store.close()
        await asyncio.to_thread(producer.close, 10)
