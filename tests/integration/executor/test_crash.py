"""``kill -9`` of an executor process in the middle of a workflow, then a restart: finished tasks
are not run again, and the interrupted task is retried (idempotent action) or abandoned (not).
A rebalance in the middle of a run: the first owner finishes it within the revoke grace, or stops it
before the new owner resumes it; never two runs of one request."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.executor.exec_stub import Stub
from whale.producer import EventProducer
from whale.testing import Tap

from .conftest import Subprocess, request_event, send_request

pytestmark = pytest.mark.integration
SLOW_HTTP = """\
kind: http
name: test.slow-call
idempotent: true
params: {type: object, properties: {api: {type: string}}, required: [api]}
request: {method: POST, url: "{{ params.api }}/api/slow", json: {}}
timeout: 60
"""


@pytest.fixture
def joiner(tmp_path: Path, pool: str, env: dict[str, str]) -> Iterator[Subprocess]:
    """A second executor of the same pool (started by the test: its joining causes the rebalance)."""
    sub = Subprocess(pool, tmp_path / "joiner.log", env)
    yield sub
    sub.stop()


async def eventually(check: Callable[[], object], timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {check}")


def commands_with(text: str) -> list[int]:
    """Ids of the live processes whose command line mentions ``text`` (Linux ``/proc``)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
    return found


def log_events(sub: Subprocess) -> list[str]:
    lines = sub.log.read_text().splitlines() if sub.log.exists() else []
    return [json.loads(line).get("event", "") for line in lines if line.startswith("{")]


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
    await results.expect("whale.workflow.task.started", request_id=request.id, task="two")
    for _ in range(200):  # the shell of task two is running
        if marks.exists() and "two" in marks.read_text().split():
            break
        await asyncio.sleep(0.05)
    assert marks.read_text().split() == ["one", "two"]

    spawn.kill9()
    (tmp_path / "marks.txt.fast").touch()  # from now on the marking command does not sleep
    spawn.launch()
    await spawn.ready()

    (end,) = await results.expect("whale.workflow.completed", request_id=request.id, timeout=90)
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
    (abandoned,) = await results.expect("whale.action.abandoned", request_id=request.id, timeout=90)
    assert "not idempotent" in abandoned.data["error"]["message"]
    assert marks.read_text().split() == ["x"]


async def test_rebalance_mid_run_lets_the_first_owner_finish_and_the_request_runs_once(
    spawn: Subprocess,
    joiner: Subprocess,
    producer: EventProducer,
    results: Tap,
    pool: str,
    stub: Stub,
    tmp_path: Path,
) -> None:
    stub.route("POST", "/api/slow", (200, {"ok": True}), delay=15)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "slow.yaml").write_text(SLOW_HTTP)
    for sub in (spawn, joiner):
        sub.env["WHALE_EXECUTOR_CATALOG_DIRS"] = json.dumps([str(catalog)])
    spawn.env["WHALE_EXECUTOR_REVOKE_GRACE"] = "60"  # ample: the call must end inside the grace
    spawn.launch()
    await spawn.ready()
    request = request_event(pool, "test.slow-call", {"api": stub.url})
    await send_request(producer, request)
    await eventually(lambda: stub.requests("/api/slow"))  # the call is under way in the first executor

    joiner.launch()  # joins the group: the first executor's partitions are revoked mid-call
    done = (await results.expect("whale.action.succeeded", request_id=request.id, timeout=90))[0]
    await joiner.ready(timeout=90)
    assert "revoke_waiting" in log_events(spawn)  # the rebalance did happen while the call ran
    await asyncio.sleep(5)  # a redelivery of the request would be answered within this
    assert len(stub.requests("/api/slow")) == 1
    finals = results.of("whale.action.", idempotency_key=request.data["idempotency_key"])
    assert [(e.type, e.id) for e in finals] == [(done.type, done.id)]  # not even a re-published copy
    assert "revoke_cancelling" not in log_events(spawn)


async def test_rebalance_after_the_grace_cancels_the_run_before_the_new_owner_resumes_it(
    spawn: Subprocess, joiner: Subprocess, producer: EventProducer, results: Tap, pool: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    spawn.env["WHALE_EXECUTOR_REVOKE_GRACE"] = "1"
    spawn.launch()
    await spawn.ready()
    request = request_event(pool, "test.mark-once", {"file": str(marks), "task": "x", "sleep": 90})
    await send_request(producer, request)
    await eventually(lambda: marks.exists() and marks.read_text().split() == ["x"])
    assert commands_with(str(marks))

    joiner.launch()  # the rebalance comes long before the 90 s command ends: it is cancelled
    abandoned = (await results.expect("whale.action.abandoned", request_id=request.id, timeout=90))[0]
    assert "not idempotent" in abandoned.data["error"]["message"]
    assert not commands_with(str(marks))  # the first run was stopped (its process group killed)
    await joiner.ready(timeout=90)
    assert "revoke_cancelling" in log_events(spawn)
    await asyncio.sleep(3)
    assert marks.read_text().split() == ["x"]
    finals = results.of("whale.action.", idempotency_key=request.data["idempotency_key"])
    assert [(e.type, e.id) for e in finals] == [(abandoned.type, abandoned.id)]  # no late success
