"""Running a service (:func:`whale.runtime.run`) on uvloop or asyncio, and periodic jobs
(:func:`whale.runtime.every`): run at once and again each period; a failure does not stop them; they
end when the stop event is set."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

import pytest
import uvloop

from whale.eventloop import EventLoop
from whale.runtime import every, run


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


def _serve_on(loop: EventLoop) -> dict[str, object]:
    """Runs a service body under :func:`whale.runtime.run` that uses what services rely on: a thread
    waking the loop, ``asyncio.to_thread``, an asyncio subprocess, then SIGTERM for a graceful stop."""
    seen: dict[str, object] = {}

    async def main(stop: asyncio.Event) -> None:
        running = asyncio.get_running_loop()
        seen["uvloop"] = isinstance(running, uvloop.Loop)
        woken = asyncio.Event()
        threading.Thread(target=lambda: running.call_soon_threadsafe(woken.set)).start()
        await asyncio.wait_for(woken.wait(), 10)
        seen["to_thread"] = await asyncio.to_thread(lambda: threading.current_thread().name != "MainThread")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('out')", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        seen["subprocess"] = (proc.returncode, out.strip())
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 10)
        seen["stopped"] = True

    assert run(main, loop) == 0
    return seen


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_service_runs_threads_subprocesses_and_stops_on_sigterm_on_either_loop(loop: EventLoop) -> None:
    seen = _serve_on(loop)
    assert seen == {
        "uvloop": loop == "uvloop",
        "to_thread": True,
        "subprocess": (0, b"out"),
        "stopped": True,
    }
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the runner removed its handler
