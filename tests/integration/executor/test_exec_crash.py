"""``kill -9`` of an executor process in the middle of a workflow, then a restart: finished tasks
are not run again, and the interrupted task is retried (idempotent action) or abandoned (not)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from whale.producer import EventProducer

from .conftest import Subprocess, Tap, request_event, send_request

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("variant", ["idempotent", "once"])
async def test_kill9_mid_workflow_then_resume(
    spawn: Subprocess, producer: EventProducer, results: Tap, pool: str, tmp_path: Path, variant: str
) -> None:
    marks = tmp_path / "marks.txt"
    spawn.launch()
    await spawn.ready()
    request = request_event(
        pool, f"test.resume-{variant}", {"file": str(marks), "sleep": 60}, kind="workflow"
    )
    await send_request(producer, request)
    await results.wait("whale.workflow.task.started", request_id=request.id, task="two")
    for _ in range(200):  # the shell of task two is running
        if marks.exists() and "two" in marks.read_text().split():
            break
        await asyncio.sleep(0.05)
    assert marks.read_text().split() == ["one", "two"]

    spawn.kill9()
    (tmp_path / "marks.txt.fast").touch()  # from now on the marking command does not sleep
    spawn.launch()
    await spawn.ready()

    (end,) = await results.wait("whale.workflow.completed", request_id=request.id, timeout=90)
    runs = marks.read_text().split()
    assert runs.count("one") == 1  # finished before the crash: never run again
    assert runs.count("three") == 1
    if variant == "idempotent":
        assert runs.count("two") == 2
        assert end.data["tasks"]["two"] == "succeeded"
        started = results.of("whale.workflow.task.started", request_id=request.id, task="two")
        # at-least-once: the resumed run re-publishes its last recorded transition (same event id)
        attempts = [e.data["attempt"] for e in {e.id: e for e in started}.values()]
        assert attempts == [1, 2]
    else:
        assert runs.count("two") == 1
        assert end.data["tasks"]["two"] == "abandoned"
        (abandoned,) = results.of("whale.workflow.task.abandoned", request_id=request.id, task="two")
        assert "not idempotent" in abandoned.data["error"]["message"]
        assert abandoned.data["error"]["retryable"] is False
    assert end.data["output"] == {"two": end.data["tasks"]["two"]}
    assert len(results.of("whale.workflow.task.succeeded", request_id=request.id, task="one")) == 1
    assert len(results.of("whale.workflow.started", request_id=request.id)) == 1


async def test_kill9_mid_action_abandons_a_non_idempotent_action(
    spawn: Subprocess, producer: EventProducer, results: Tap, pool: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    spawn.launch()
    await spawn.ready()
    request = request_event(pool, "test.mark-once", {"file": str(marks), "task": "x", "sleep": 60})
    await send_request(producer, request)
    for _ in range(600):
        if marks.exists() and marks.read_text().split() == ["x"]:
            break
        await asyncio.sleep(0.05)
    spawn.kill9()
    spawn.launch()
    await spawn.ready()
    (abandoned,) = await results.wait("whale.action.abandoned", request_id=request.id, timeout=90)
    assert "not idempotent" in abandoned.data["error"]["message"]
    assert marks.read_text().split() == ["x"]
