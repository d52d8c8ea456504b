"""The executor's run state on the real compacted ``whale.executor.state`` topic."""

from __future__ import annotations

import time

import pytest
from whale_executor.state import StateStore

from whale.producer import EventProducer
from whale.settings import WhaleSettings

pytestmark = pytest.mark.integration

WEEK = 7 * 24 * 3600.0


async def test_a_swept_run_is_gone_for_the_next_executor_and_a_running_one_stays(
    stack: WhaleSettings, pool: str, producer: EventProducer
) -> None:
    """After the retention, a finished run is tombstoned: a store started afterwards (what a
    restarted executor reads) no longer has it, while the unfinished run is still there."""
    first = StateStore(stack, producer, pool=pool, source="/test")
    await first.start()
    try:
        await first.put(first.run_key("done"), {"kind": "action", "status": "finished"})
        await first.put(first.run_key("running"), {"kind": "action", "status": "started"})
        assert await first.sweep(retention=WEEK, now=time.time() + WEEK + 60) == 1
    finally:
        await first.stop()
    second = StateStore(stack, producer, pool=pool, source="/test")
    await second.start()
    try:
        assert second.get(second.run_key("done")) is None
        running = second.get(second.run_key("running"))
        assert running is not None and running["status"] == "started"
    finally:
        await second.stop()
