"""The to-do stage's local store on the real ``whale.todos``: it resumes after the records it applied,
and a store deleted while the stage is down is rebuilt from the topic with every item."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import pytest
from whale_todo.stage import record
from whale_todo.store import TodoLoader, open_id

from whale import topics
from whale.producer import Delivered, EventProducer
from whale.settings import WhaleSettings
from whale.store import StoreSettings
from whale.todos import OPEN_STATES

pytestmark = pytest.mark.integration


async def load(stack: WhaleSettings, state: StoreSettings) -> TodoLoader:
    loader = TodoLoader(stack, state, OPEN_STATES)
    await loader.start()
    await loader.stop()
    return loader


async def test_the_book_resumes_from_its_store_and_is_rebuilt_when_the_store_is_lost(
    stack: WhaleSettings, tmp_path: Path
) -> None:
    state = StoreSettings(dir=tmp_path, cache_mb=4)
    producer = EventProducer(stack, client_id="test-todo-store")
    tag = uuid.uuid4().hex
    items: list[dict[str, str | int]] = [
        {"id": f"{tag}-{n}", "key": f"printer.jammed|{tag}-{n}", "status": "open", "count": 1}
        for n in range(10)
    ]
    try:
        delivered = await asyncio.gather(
            *(producer.send(topics.TODOS, record(item), key=str(item["id"])) for item in items)
        )
    finally:
        await asyncio.to_thread(producer.close, 10)
    first = await load(stack, state)
    assert first.store is not None
    applied = first.store.offsets()
    for d in delivered:
        assert isinstance(d, Delivered) and applied[d.partition] > d.offset  # all applied
    path = first.store.path
    first.store.close()

    resumed = await load(stack, state)
    assert resumed.store is not None and not resumed.store.rebuilt
    assert all(resumed.store.offset(p) >= offset for p, offset in applied.items())  # never from 0
    resumed.store.close()

    shutil.rmtree(path)  # lost while the stage is down
    rebuilt = await load(stack, state)
    assert rebuilt.store is not None and rebuilt.store.rebuilt
    batch = rebuilt.store.batch()
    for item in items:
        assert open_id(batch, str(item["key"])) == item["id"]
    rebuilt.store.close()
