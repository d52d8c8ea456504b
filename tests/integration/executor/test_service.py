"""The executor on the real Kafka: each action kind, invalid params, retries, timeouts, workflows,
approvals, effectively-once redelivery and the published catalogue."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
from whale_executor.app import Executor
from whale_executor.cli import format_catalogs, read_catalogs

from tests.executor.exec_stub import Stub
from whale import topics
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import Tap

from .conftest import request_event, send_request

pytestmark = pytest.mark.integration


async def test_http_action_calls_the_saas_api_with_secret_auth_and_retries_5xx_with_backoff(
    executor: Executor, producer: EventProducer, results: Tap, stub: Stub, env: dict[str, str], pool: str
) -> None:
    stub.route("POST", "/api/tickets", (503, {"error": "busy"}), (500, {}), (201, {"id": 42}))
    request = request_event(pool, "test.ticket", {"api": stub.url, "title": "disk full", "priority": 2})
    await send_request(producer, request)
    (done,) = await results.expect("whale.action.succeeded", request_id=request.id)
    assert done.data["output"]["status"] == 201 and done.data["output"]["body"] == {"id": 42}
    assert done.data["output"]["attempts"] == 3
    assert done.extensions["causationid"] == request.id
    assert done.extensions["correlationid"] == request.extensions["correlationid"]
    seen = stub.requests("/api/tickets")
    assert [s.body for s in seen] == [{"title": "disk full", "priority": 2}] * 3
    assert seen[0].headers["authorization"] == f"Bearer {env['WHALE_TEST_TICKETS_TOKEN']}"
    assert seen[1].at - seen[0].at >= 0.3 and seen[2].at - seen[1].at >= 0.6  # exponential backoff
    assert env["WHALE_TEST_TICKETS_TOKEN"] not in done.to_json().decode()


async def test_notify_action_posts_markdown_to_the_wecom_robot(
    executor: Executor, producer: EventProducer, results: Tap, stub: Stub, env: dict[str, str], pool: str
) -> None:
    stub.route("POST", "/cgi-bin/webhook/send", (200, {"errcode": 0, "errmsg": "ok"}))
    request = request_event(pool, "test.wecom", {"title": "Disk full", "host": "db1"})
    await send_request(producer, request)
    (done,) = await results.expect("whale.action.succeeded", request_id=request.id)
    (seen,) = stub.requests("/cgi-bin/webhook/send")
    assert seen.body == {"msgtype": "markdown", "markdown": {"content": "## Disk full\n> host: **db1**"}}
    robot_key = env["WHALE_TEST_WECOM_WEBHOOK"].rsplit("=", 1)[1]
    assert robot_key not in done.to_json().decode()


async def test_shell_and_python_actions_and_a_hung_command_killed_at_its_timeout(
    executor: Executor, producer: EventProducer, results: Tap, pool: str
) -> None:
    echo = request_event(pool, "test.echo", {"text": "a b; $(reboot)"})
    python = request_event(pool, "core.echo", {"message": {"x": [1, 2]}})
    hung = request_event(pool, "test.hang", {"seconds": 60})
    for event in (echo, python, hung):
        await send_request(producer, event)
    (shell_done,) = await results.expect("whale.action.succeeded", request_id=echo.id)
    assert shell_done.data["output"]["stdout"] == "a b; $(reboot)\n"
    assert shell_done.data["output"]["exit_code"] == 0
    (py_done,) = await results.expect("whale.action.succeeded", request_id=python.id)
    assert py_done.data["output"] == {"message": {"x": [1, 2]}}
    (timed_out,) = await results.expect("whale.action.timed_out", request_id=hung.id)
    assert timed_out.data["output"]["killed"] is True
    assert timed_out.data["error"]["retryable"] is True
    assert timed_out.data["duration_ms"] < 10_000


async def test_invalid_params_and_malformed_requests_become_failed_results(
    executor: Executor, producer: EventProducer, results: Tap, pool: str
) -> None:
    bad = request_event(pool, "test.ticket", {"api": "http://x", "title": "", "priority": 9})
    unknown = request_event(pool, "no.such.action", {})
    await send_request(producer, bad)
    await send_request(producer, unknown)
    malformed = CloudEvent.create(
        type="whale.action.requested",
        source="/test",
        data={"target": {"kind": "action", "pool": pool}, "idempotency_key": "m1", "pool": pool},
    )
    await producer.send(topics.actions_topic(pool), malformed)
    (failed,) = await results.expect("whale.action.failed", request_id=bad.id)
    fields = {p["field"] for p in failed.data["error"]["problems"]}
    assert fields == {"title", "priority"} and failed.data["error"]["retryable"] is False
    (missing,) = await results.expect("whale.action.failed", request_id=unknown.id)
    assert "no action 'no.such.action'" in missing.data["error"]["message"]
    await asyncio.sleep(0.5)
    assert executor.catalog.actions  # still serving
    again = request_event(pool, "core.noop", {})
    await send_request(producer, again)
    await results.expect("whale.action.succeeded", request_id=again.id)


async def test_redelivered_request_is_not_run_again_and_gets_the_recorded_result(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, stub: Stub
) -> None:
    stub.route("POST", "/api/tickets", (201, {"id": 1}))
    request = request_event(pool, "test.ticket", {"api": stub.url, "title": "once", "priority": 1})
    await send_request(producer, request)
    await results.expect("whale.action.succeeded", request_id=request.id)
    await send_request(producer, request)  # at-least-once delivery: the same request again
    first, second = await results.expect("whale.action.succeeded", 2, request_id=request.id)
    assert first.id == second.id
    assert len(stub.requests("/api/tickets")) == 1


@pytest.mark.parametrize("granted", [True, False])
async def test_workflow_branches_join_and_approval(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, stack: WhaleSettings, granted: bool
) -> None:
    request = request_event(pool, "test.branches-approval", {"host": "web7"}, kind="workflow")
    await send_request(producer, request)
    (waiting,) = await results.expect("whale.workflow.task.waiting", request_id=request.id, timeout=60)
    run_id = waiting.data["run_id"]
    assert waiting.subject == run_id and waiting.data["output"]["message"] == "Go ahead on web7?"
    branch_done = {e.data["task"] for e in results.of("whale.workflow.task.succeeded", request_id=request.id)}
    assert branch_done == {"check", "left", "right"}
    decision = CloudEvent.create(
        type="whale.approval.granted" if granted else "whale.approval.denied",
        source="/test/people",
        subject=run_id,
        data={"run_id": run_id, "task": "gate", "by": "alice", "comment": "ok" if granted else "not now"},
    )
    await producer.send(topics.EVENTS, decision)
    (end,) = await results.expect("whale.workflow.completed", request_id=request.id)
    expected = "approved by alice" if granted else "denied by alice: not now"
    assert end.data["output"] == {"left": "left of web7", "decision": expected}
    assert end.data["tasks"]["gate"] == ("succeeded" if granted else "failed")
    assert end.extensions["causationid"] == request.id
    started = results.of("whale.workflow.started", request_id=request.id)
    assert len(started) == 1 and started[0].subject == run_id


async def test_catalogue_is_published_for_the_pool(
    executor: Executor, stack: WhaleSettings, pool: str
) -> None:
    catalogs = await read_catalogs(stack)
    doc = catalogs[pool]
    names = {a["name"]: a for a in doc["actions"]}
    assert names["test.ticket"]["kind"] == "http" and names["test.ticket"]["params_schema"]["required"] == [
        "api",
        "title",
        "priority",
    ]
    assert names["test.mark-once"]["idempotent"] is False
    assert "test.branches-approval" in {w["name"] for w in doc["workflows"]}
    text = format_catalogs({pool: doc})
    assert f"pool {pool} (topic whale.actions.{pool})" in text and "test.wecom" in text
    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "whale", "actions", "list", "--pool", pool, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)[pool] == doc
    base = f"http://{executor.settings.host}:{executor.settings.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/readyz")).status_code == 200
        assert "whale_executor_runs_total" in (await client.get("/metrics")).text
