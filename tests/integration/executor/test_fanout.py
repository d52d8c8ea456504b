"""A fan-out task on the real Kafka: five hosts two at a time, stopped after two failures, with the
per-item results in the workflow's result event; a kill -9 in the middle of a fan-out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from whale_executor.app import Executor

from whale.producer import EventProducer
from whale.testing import Tap

from .conftest import Subprocess, request_event, send_request

pytestmark = pytest.mark.integration


async def test_fan_out_two_at_a_time_stops_after_two_failures(
    executor: Executor, producer: EventProducer, results: Tap, pool: str
) -> None:
    hosts = [
        {"sleep": 1, "code": 0},  # still running while the next two fail
        {"sleep": 0, "code": 1},
        {"sleep": 0, "code": 2},
        {"sleep": 0, "code": 0},
        {"sleep": 0, "code": 0},
    ]
    request = request_event(pool, "test.fanout", {"hosts": hosts}, kind="workflow")
    await send_request(producer, request)
    (end,) = await results.expect("whale.workflow.failed", request_id=request.id)
    (failure,) = end.data["error"]["failures"]
    assert failure["task"] == "restart"
    assert failure["error"]["message"] == (
        "task 'restart': 2 of 5 items failed (stop_after_failures 2); 2 not started"
    )
    items = failure["output"]["items"]
    assert [i["status"] for i in items] == ["succeeded", "failed", "failed", "skipped", "skipped"]
    assert [i["item"] for i in items] == hosts
    assert items[0]["output"]["exit_code"] == 0
    assert [i["output"]["exit_code"] for i in items[1:3]] == [1, 2]
    assert items[1]["error"]["message"] == "sh exited with code 1"
    assert items[3] == {"item": hosts[3], "status": "skipped", "output": None, "error": None}
    assert end.data["tasks"] == {"restart": "failed"}
    (started,) = results.of("whale.workflow.task.started", request_id=request.id)
    assert started.data["output"] == {"action": "test.exit", "items": 5}


async def test_kill9_mid_fan_out_keeps_finished_items_and_abandons_the_interrupted_one(
    spawn: Subprocess, producer: EventProducer, results: Tap, pool: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    spawn.launch()
    await spawn.ready()
    hosts = [{"name": "a", "sleep": 0}, {"name": "b", "sleep": 60}, {"name": "c", "sleep": 0}]
    request = request_event(pool, "test.fanout-once", {"file": str(marks), "hosts": hosts}, kind="workflow")
    await send_request(producer, request)
    for _ in range(1200):  # item b (not idempotent) is running
        if marks.exists() and marks.read_text().split() == ["a", "b"]:
            break
        await asyncio.sleep(0.05)
    assert marks.read_text().split() == ["a", "b"]
    spawn.kill9()
    (tmp_path / "marks.txt.fast").touch()
    spawn.launch()
    await spawn.ready()
    (end,) = await results.expect("whale.workflow.completed", request_id=request.id, timeout=90)
    assert marks.read_text().split() == ["a", "b", "c"]  # a not run again, b abandoned, c run
    assert end.data["output"] == {"statuses": ["succeeded", "abandoned", "succeeded"]}
