"""The event center's runs view on a real compacted topic: a restart reads only the records written
while it was down, and a store deleted while the event center is down comes back complete."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from whale_event_center.runs_view import RunBook, RunFilter
from whale_event_center.state_view import StateView
from whale_executor.state import state_message

from whale.admin import ensure_topics
from whale.binding import KafkaMessage
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.store import StoreSettings
from whale.topics import TopicSpec

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0


@pytest.fixture
def topic(stack: WhaleSettings) -> Iterator[str]:
    """A compacted topic of this test only, in place of ``whale.executor.state``."""
    name = f"test.executor.state.{uuid.uuid4().hex[:12]}"
    ensure_topics(stack, [TopicSpec(name, 3, "test state", compacted=True)])
    yield name
    AdminClient(stack.kafka_config()).delete_topics([name])


@pytest.fixture
async def producer(stack: WhaleSettings) -> AsyncIterator[EventProducer]:
    p = EventProducer(stack)
    yield p
    await asyncio.to_thread(p.close)


async def record(producer: EventProducer, topic: str, key: str, value: dict[str, Any] | None) -> None:
    if value is None:
        await producer.send_message(topic, KafkaMessage(key.encode(), None, ()))
        return
    message = state_message(key, "whale.executor.run", "whale/executor/ops", value)
    assert message is not None
    await producer.send_message(topic, message)


def run(n: int, **changes: Any) -> dict[str, Any]:
    state = {"kind": "workflow", "run_id": f"wf-{n}", "workflow": "host.restart", "pool": "ops",
             "status": "started", "started_at": T0 + n, "recorded_at": T0 + n,
             "tasks": {"gate": {"status": "waiting", "since": T0 + n, "message": f"go {n}?"}}}  # fmt: skip
    return {**state, **changes}


def done(n: int) -> dict[str, Any]:
    return run(
        n, status="finished", tasks={}, result_event={"type": "whale.workflow.completed", "time": T0 + n + 1}
    )


def listed(view: StateView, state: str = "all") -> tuple[list[str], int]:
    runs, total = RunBook.of(view).runs_page(RunFilter(state), 0, 1000)
    return [r["run_id"] for r in runs], total


async def test_a_restart_reads_only_new_records_and_a_deleted_store_comes_back_complete(
    stack: WhaleSettings, topic: str, producer: EventProducer, tmp_path: Path
) -> None:
    state = StoreSettings(dir=tmp_path, cache_mb=1)
    for n in range(30):
        await record(producer, topic, f"ops/k{n}", run(n))
    for n in range(0, 30, 2):
        await record(producer, topic, f"ops/k{n}", done(n))
    await record(producer, topic, "ops/approval/wf-1/gate", {"kind": "approval", "run_id": "wf-1", "task": "gate",
                                                             "approved": True})  # fmt: skip
    await record(producer, topic, "ops/k29", None)
    first = StateView(stack, topic, state=state)
    await first.start()
    try:
        assert first.local.rebuilt and first.records_read == 47
        everything, active = listed(first), listed(first, "active")
        approvals = RunBook.of(first).approvals()
        path = first.local.path
    finally:
        await first.stop()
    assert everything == ([f"wf-{n}" for n in range(28, -1, -1)], 29)
    assert active == ([f"wf-{n}" for n in range(27, 0, -2)], 14)
    assert [a["id"] for a in approvals] == [f"wf-{n}.gate" for n in range(3, 29, 2)]

    await record(producer, topic, "ops/k3", done(3))  # while the event center is down
    resumed = StateView(stack, topic, state=state)
    await resumed.start()
    try:
        assert not resumed.local.rebuilt and resumed.records_read == 1
        assert listed(resumed, "active") == ([*(f"wf-{n}" for n in range(27, 4, -2)), "wf-1"], 13)
        everything, approvals = listed(resumed), RunBook.of(resumed).approvals()
    finally:
        await resumed.stop()

    shutil.rmtree(path)  # the store is lost while the event center is down (a new pod, another machine)
    rebuilt = StateView(stack, topic, state=state)
    await rebuilt.start()
    try:
        assert rebuilt.local.rebuilt and rebuilt.local.reason == "missing" and rebuilt.local.path == path
        assert listed(rebuilt) == everything and RunBook.of(rebuilt).approvals() == approvals
        succeeded = sorted([*range(0, 30, 2), 3], reverse=True)
        assert listed(rebuilt, "succeeded") == ([f"wf-{n}" for n in succeeded], 16)
        book = RunBook.of(rebuilt)
        one = book.get("wf-1")
        assert one is not None and book.approval(one, "gate")["status"] == "approved"
    finally:
        await rebuilt.stop()
