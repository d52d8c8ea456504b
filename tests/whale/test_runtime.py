"""Periodic jobs (:func:`whale.runtime.every`): run at once and again each period; a failure does not
stop them; they end when the stop event is set."""

from __future__ import annotations

import asyncio

from whale.runtime import every


async def test_a_periodic_job_runs_again_after_a_failure_and_stops_with_the_stop_event() -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def job() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("broker down")
        if len(calls) == 3:
            stop.set()

    await asyncio.wait_for(every(0.01, job, stop, "test_sweep"), 10)
    assert calls == [0, 1, 2]
