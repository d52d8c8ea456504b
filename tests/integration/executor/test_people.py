"""People in the loop on the real Kafka: an executor of a test pool and the event center's
``/approvals`` and ``/runs`` (with real personal tokens), driven through the ``whale`` CLI and the API.

An approval answered from the CLI lets the workflow continue (who may answer and the response schema
are enforced, a second answer is 409); a run cancelled mid-shell has its process killed and ends
``whale.workflow.cancelled``; a failed run retried from its failed task does not run the finished
ones again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from whale_event_center.settings import Settings as CenterSettings
from whale_executor.app import Executor

from tests.integration.event_center.live import AppThread
from tests.ports import free_port
from whale import tokens as personal
from whale import topics
from whale.authz import Role
from whale.compacted import put
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import Tap

from .conftest import request_event, send_request

pytestmark = pytest.mark.integration


async def _token(producer: EventProducer, name: str, role: Role) -> str:
    token_id, token = personal.new_personal_token()
    record = personal.new_record(token, token_id, name=name, role=role, ttl=timedelta(hours=2))
    await put(producer, topics.TOKENS, token_id, personal.to_event(record))
    return token


@pytest.fixture
async def people(producer: EventProducer) -> dict[str, str]:
    return {
        "ann": await _token(producer, "ann-approver", Role.operator),  # named in the approval
        "bob": await _token(producer, "bob-operator", Role.operator),  # an operator, not an approver
        "vic": await _token(producer, "vic-viewer", Role.viewer),
    }


@pytest.fixture
async def center(stack: WhaleSettings, people: dict[str, str]) -> AsyncIterator[str]:
    settings = CenterSettings(whale=stack, port=free_port(), schemas_dir=None)
    assert not settings.dev_mode
    app = AppThread(settings)
    with app:
        await asyncio.to_thread(app.wait_ready)
        yield app.url


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def wait_for(probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(probe)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


def cli(url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHALE_TOKEN": token, "WHALE_EVENT_CENTER_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "whale", *args], capture_output=True, text=True, timeout=120, env=env
    )


async def test_an_approval_answered_from_the_cli_lets_the_workflow_continue(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, center: str, people: dict[str, str]
) -> None:
    request = request_event(pool, "test.people-approval", {"host": "web7"}, kind="workflow")
    await send_request(producer, request)
    (waiting,) = await results.expect("whale.workflow.task.waiting", request_id=request.id)
    approval_id = f"{waiting.data['run_id']}.gate"
    assert waiting.data["output"]["todo_request"]["key"] == f"approval:{approval_id}"  # the to-do it opens
    with client(center, people["vic"]) as viewer:

        def listed() -> dict[str, Any] | None:
            found = [a for a in viewer.get("/approvals").json()["approvals"] if a["id"] == approval_id]
            return found[0] if found else None

        shown = await wait_for(listed)
        assert shown["question"] == "Restart web7?" and shown["workflow"] == "test.people-approval"
        assert shown["approvers"] == {"role": "admin", "people": ["ann-approver"]}
        assert shown["requester"]["rule"] == {"id": "test-rule", "version": 1} and shown["deadline"]
        assert viewer.post(f"/approvals/{approval_id}", json={"decision": "approve"}).status_code == 403
    with client(center, people["bob"]) as bob:
        refused = bob.post(
            f"/approvals/{approval_id}", json={"decision": "approve", "response": {"reason": "ok!"}}
        )
        assert refused.status_code == 403 and "ann-approver" in refused.json()["message"]
    bad = await asyncio.to_thread(
        cli, center, people["ann"], "approvals", "approve", approval_id, "--response", '{"reason": "x"}'
    )
    assert bad.returncode == 1 and '"response.reason"' in bad.stdout, bad.stdout + bad.stderr
    listing = await asyncio.to_thread(cli, center, people["ann"], "approvals", "list")
    assert approval_id in listing.stdout, listing.stdout + listing.stderr
    done = await asyncio.to_thread(
        cli, center, people["ann"], "approvals", "approve", approval_id, "--comment", "go",
        "--response", '{"reason": "disk is full"}',
    )  # fmt: skip
    assert done.returncode == 0 and "approved by ann-approver" in done.stdout, done.stdout + done.stderr
    (end,) = await results.expect("whale.workflow.completed", request_id=request.id)
    assert end.data["output"] == {"said": "ann-approver: disk is full"}
    (granted,) = await results.expect("whale.workflow.task.succeeded", request_id=request.id, task="gate")
    assert granted.data["output"]["answered_by"]["name"] == "ann-approver"
    assert granted.data["output"]["answered_by"]["role"] == "operator"
    assert granted.data["output"]["todo_resolve"] == {
        "key": f"approval:{approval_id}", "by": "ann-approver", "resolution": "approved"
    }  # fmt: skip
    with client(center, people["ann"]) as ann:
        again = ann.post(
            f"/approvals/{approval_id}", json={"decision": "deny", "response": {"reason": "late"}}
        )
        assert again.status_code == 409, again.text
        assert ann.get(f"/approvals/{approval_id}").json()["status"] == "approved"
        assert approval_id not in [a["id"] for a in ann.get("/approvals").json()["approvals"]]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state


async def test_a_run_cancelled_mid_shell_kills_the_process_and_ends_cancelled(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, center: str,
    people: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    pid_file = tmp_path / "pid"
    request = request_event(pool, "test.people-cancel", {"file": str(pid_file)}, kind="workflow")
    await send_request(producer, request)
    (started,) = await results.expect("whale.workflow.task.started", request_id=request.id)
    run_id = started.data["run_id"]
    await wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    pid = int(pid_file.read_text())
    assert not _gone(pid)
    with client(center, people["bob"]) as bob:
        shown = await wait_for(lambda: bob.get(f"/runs/{run_id}").json().get("state") == "running")
        assert shown
        answer = await asyncio.to_thread(
            cli, center, people["bob"], "runs", "cancel", run_id, "--comment", "cancel check 7f3a"
        )
        assert answer.returncode == 0, answer.stdout + answer.stderr
        (end,) = await results.expect("whale.workflow.cancelled", request_id=request.id)
        assert end.data["error"]["message"] == "cancelled by bob-operator: cancel check 7f3a"
        assert (
            end.data["tasks"] == {"hang": "cancelled"} and end.data["cancelled_by"]["name"] == "bob-operator"
        )
        await wait_for(lambda: _gone(pid), timeout=10)
        detail = await wait_for(
            lambda: (d := bob.get(f"/runs/{run_id}").json())["state"] == "cancelled" and d
        )
        assert detail["tasks"]["hang"]["status"] == "cancelled" and detail["input"] == {"file": str(pid_file)}
        assert bob.post(f"/runs/{run_id}/cancel", json={}).status_code == 409
    with client(center, people["vic"]) as viewer:
        assert viewer.post(f"/runs/{run_id}/cancel", json={}).status_code == 403


async def test_a_failed_run_retried_from_its_failed_task_reuses_the_finished_ones(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, center: str,
    people: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    request = request_event(pool, "test.people-retry", {"dir": str(tmp_path)}, kind="workflow")
    await send_request(producer, request)
    (failed,) = await results.expect("whale.workflow.failed", request_id=request.id)
    run_id = failed.data["run_id"]
    assert failed.data["tasks"] == {"first": "succeeded", "flaky": "failed"}
    with client(center, people["bob"]) as bob:
        await wait_for(lambda: bob.get(f"/runs/{run_id}").json().get("state") == "failed")
        listed = await asyncio.to_thread(cli, center, people["bob"], "runs", "list", "--state", "failed")
        assert run_id in listed.stdout
        answer = await asyncio.to_thread(cli, center, people["bob"], "runs", "retry", run_id)
        assert answer.returncode == 0, answer.stdout + answer.stderr
        new_id = answer.stdout.strip().rsplit(" ", 1)[-1]
        (end,) = await results.expect("whale.workflow.completed", run_id=new_id)
        assert end.data["output"] == {"first": "succeeded", "last": "succeeded"}
        assert (tmp_path / "marks").read_text().split() == ["first", "last"]  # first ran once
        assert (tmp_path / "flaky").read_text().split() == ["run", "run"]
        assert not results.of("whale.workflow.task.started", run_id=new_id, task="first")
        detail = await wait_for(
            lambda: (d := bob.get(f"/runs/{new_id}").json()).get("state") == "succeeded" and d
        )
        assert detail["retry_of"] == run_id and detail["tasks"]["first"]["reused_from"] == run_id
        assert bob.post(f"/runs/{new_id}/retry").status_code == 409  # it succeeded
    shown = await asyncio.to_thread(cli, center, people["vic"], "runs", "show", new_id)
    assert "reused from" in shown.stdout, shown.stdout + shown.stderr


async def test_a_paused_run_starts_no_new_task_until_it_is_resumed(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, center: str,
    people: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    request = request_event(pool, "test.people-pause", {"dir": str(tmp_path)}, kind="workflow")
    await send_request(producer, request)
    (started,) = await results.expect("whale.workflow.task.started", request_id=request.id, task="first")
    run_id = started.data["run_id"]
    with client(center, people["bob"]) as bob:
        await wait_for(lambda: bob.get(f"/runs/{run_id}").status_code == 200)
        paused = await asyncio.to_thread(cli, center, people["bob"], "runs", "pause", run_id)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        await wait_for(lambda: bob.get(f"/runs/{run_id}").json()["state"] == "paused")
        await results.expect("whale.workflow.task.succeeded", request_id=request.id, task="first")
        await asyncio.sleep(2.0)  # time in which an unpaused run would have started "second"
        assert not results.of("whale.workflow.task.started", request_id=request.id, task="second")
        assert (tmp_path / "marks").read_text().split() == ["first"]
        resumed = await asyncio.to_thread(cli, center, people["bob"], "runs", "resume", run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        await results.expect("whale.workflow.completed", request_id=request.id)
        assert (tmp_path / "marks").read_text().split() == ["first", "second"]
