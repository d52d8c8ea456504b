"""An action request's run ends cancelled when its cancel record is written, before or while it runs;
a request cancelled itself (a revoke, a stop) is not turned into a result."""

from __future__ import annotations

import asyncio

import pytest
from whale_executor.catalog import load_catalog
from whale_executor.results import CANCELLED, SUCCEEDED
from whale_executor.state import CANCEL_STATE

from tests.executor.test_workflow_engine import CALLS, Harness
from whale import topics
from whale.runs import run_id


def harness() -> Harness:
    return Harness(load_catalog(pool="t", modules=["tests.executor.test_workflow_engine"]))


async def cancel(h: Harness, key: str) -> None:
    run = run_id("action", h.store.run_key(key))
    record = {"kind": "cancel", "run_id": run, "by": "alice", "comment": "wrong host"}
    await h.store.put(h.store.cancel_key(run), record, kind=CANCEL_STATE)


async def test_a_running_action_is_cancelled_when_its_cancel_record_is_written() -> None:
    h = harness()
    request = asyncio.create_task(h.request("test.counted", {"seconds": 30}, key="c1", kind="action"))
    while h.store.get(h.store.run_key("c1")) is None:
        await asyncio.sleep(0.01)
    await cancel(h, "c1")
    await asyncio.wait_for(request, 5)
    result = await h.wait_type(CANCELLED)
    assert result.data["error"]["message"] == "cancelled by alice: wrong host"


async def test_an_action_cancelled_before_it_starts_never_runs() -> None:
    h = harness()
    await cancel(h, "c2")
    before = CALLS.get("?", 0)
    await h.request("test.counted", {"seconds": 0}, key="c2", kind="action")
    assert (await h.wait_type(CANCELLED)).data["error"]["retryable"] is False
    assert CALLS.get("?", 0) == before


async def test_a_request_cancelled_itself_ends_without_a_result_and_stops_its_action() -> None:
    h = harness()
    request = asyncio.create_task(h.request("test.counted", {"seconds": 30}, key="c3", kind="action"))
    while h.store.get(h.store.run_key("c3")) is None:
        await asyncio.sleep(0.01)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert h.producer.events(topics.RESULTS) == []
    assert h.store.get(h.store.run_key("c3"))["status"] == "started"  # type: ignore[index]


async def test_an_action_not_cancelled_returns_its_result() -> None:
    h = harness()
    await h.request("test.counted", {"seconds": 0}, key="c4", kind="action")
    assert (await h.wait_type(SUCCEEDED)).data["idempotency_key"] == "c4"
