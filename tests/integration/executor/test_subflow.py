"""A subworkflow on the real Kafka: the parent's workflow task runs a child run whose output becomes
the task's; a kill -9 while the child's task runs, and the resumed parent resumes its child."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from whale.producer import EventProducer
from whale.testing import Tap

from .conftest import Subprocess, request_event, send_request

pytestmark = pytest.mark.integration


async def test_kill9_mid_child_resumes_the_child_without_rerunning_finished_tasks(
    spawn: Subprocess, producer: EventProducer, results: Tap, pool: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    spawn.launch()
    await spawn.ready()
    request = request_event(pool, "test.sub-parent", {"file": str(marks), "sleep": 60}, kind="workflow")
    await send_request(producer, request)
    for _ in range(1200):  # the child's task two is running
        if marks.exists() and marks.read_text().split() == ["p1", "c1", "c2"]:
            break
        await asyncio.sleep(0.05)
    assert marks.read_text().split() == ["p1", "c1", "c2"]
    spawn.kill9()
    (tmp_path / "marks.txt.fast").touch()
    spawn.launch()
    await spawn.ready()
    (end,) = await results.expect("whale.workflow.completed", request_id=request.id, timeout=90)
    # p1 and c1 not run again; c2 (idempotent, interrupted) run again; then the parent goes on
    assert marks.read_text().split() == ["p1", "c1", "c2", "c2", "p2"]
    assert end.data["output"] == {"child": {"two": "succeeded"}}
    assert end.data["tasks"] == {"before": "succeeded", "sub": "succeeded", "after": "succeeded"}
    started = results.of("whale.workflow.task.started", request_id=request.id)
    sub = [e for e in started if e.data["task"] == "sub"]
    assert sub and sub[0].data["output"]["workflow"] == "test.sub-child"
    assert sub[0].data["output"]["child_run"] == f"{end.data['run_id']}/sub"
    # the child publishes no run events of its own
    assert {e.data["run_id"] for e in results.of("whale.workflow.", request_id=request.id)} == {
        end.data["run_id"]
    }
