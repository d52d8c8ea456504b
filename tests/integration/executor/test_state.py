"""The executor's run state on the real compacted ``whale.executor.state`` topic."""

from __future__ import annotations

import asyncio
import shutil
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


async def test_a_restart_reads_only_newer_records_and_a_lost_store_is_rebuilt(
    stack: WhaleSettings, pool: str, producer: EventProducer
) -> None:
    """The local store resumes from the offsets it applied; deleted while the executor is down, it
    is rebuilt from the compacted topic with the same runs."""
    first = StateStore(stack, producer, pool=pool, source="/test")
    await first.start()
    try:
        for n in range(20):
            await first.put(first.run_key(f"run-{n}"), {"kind": "action", "status": "finished", "n": n})
        deadline = time.monotonic() + 60
        while first.records_read < 20:  # the follower read our writes back (others' may interleave)
            assert time.monotonic() < deadline, "the follower did not read the writes back"
            await asyncio.sleep(0.05)
    finally:
        await first.stop()
    resumed = StateStore(stack, producer, pool=pool, source="/test")
    await resumed.start()
    try:
        assert not resumed.local.rebuilt
        assert resumed.records_read == 0  # this pool's records were all applied before the stop
        path = resumed.local.path
        found = resumed.get(resumed.run_key("run-7"))
        assert found is not None and found["n"] == 7
    finally:
        await resumed.stop()
    shutil.rmtree(path)  # the store is lost while the executor is down (a new pod, another machine)
    rebuilt = StateStore(stack, producer, pool=pool, source="/test")
    await rebuilt.start()
    try:
        assert rebuilt.local.rebuilt and rebuilt.local.reason == "missing"
        assert rebuilt.records_read == 20
        for n in range(20):
            state = rebuilt.get(rebuilt.run_key(f"run-{n}"))
            assert state is not None and state["n"] == n and state["seq"] == 1
    finally:
        await rebuilt.stop()
