"""Workflow runs with an in-memory state store: branches, joins, approvals, retries, resume."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from whale_executor.actions.base import ActionContext
from whale_executor.actions.python import action
from whale_executor.catalog import Catalog, load_catalog
from whale_executor.requests import REQUESTED, parse_request
from whale_executor.runner import ActionRequests, Runner
from whale_executor.state import APPROVAL_STATE, StateStore
from whale_executor.workflow.handler import Workflows

from whale import topics
from whale.cloudevent import CloudEvent
from whale.producer import Delivered
from whale.settings import WhaleSettings
from whale.store import open_store
from whale.testing import FakeProducer


class Calls(BaseModel):
    n: int = 0


class SlowParams(BaseModel):
    seconds: float = 30


CALLS: dict[str, int] = {}


@action(name="test.slow-once", params=SlowParams, output=Calls, idempotent=False)
async def slow_once(params: SlowParams, ctx: ActionContext) -> Calls:
    CALLS["slow-once"] = CALLS.get("slow-once", 0) + 1
    await asyncio.sleep(params.seconds)
    return Calls(n=CALLS["slow-once"])


@action(name="test.counted", params=SlowParams, output=Calls, idempotent=True)
async def counted(params: SlowParams, ctx: ActionContext) -> Calls:
    CALLS[ctx.task or "?"] = CALLS.get(ctx.task or "?", 0) + 1
    await asyncio.sleep(params.seconds)
    return Calls(n=CALLS[ctx.task or "?"])


class Harness:
    def __init__(self, catalog: Catalog) -> None:
        self.producer = FakeProducer()
        local = open_store(f"exec-{uuid.uuid4().hex}", {"stage": "test"})  # under the tests' WHALE_STATE_DIR
        self.store = StateStore(WhaleSettings(), self.producer, pool="t", source="/test", local=local)  # type: ignore[arg-type]
        self.catalog = catalog
        self.fresh()

    def fresh(self) -> None:
        """A new executor over the same recorded state (what a restart sees)."""
        runner = Runner(pool="t", concurrency=4)
        parts: dict[str, Any] = {
            "catalog": self.catalog,
            "store": self.store,
            "runner": runner,
            "producer": self.producer,
            "pool": "t",
        }
        self.workflows = Workflows(**parts)
        self.actions = ActionRequests(**parts)

    async def request(
        self, name: str, params: dict[str, Any], key: str = "k1", kind: str = "workflow"
    ) -> CloudEvent:
        event = CloudEvent.create(
            type=REQUESTED,
            source="/test/rules",
            data={
                "rule": None,
                "target": {"kind": kind, "name": name, "pool": "t"},
                "params": params,
                "idempotency_key": key,
            },
        )
        req = parse_request(event)
        if kind == "workflow":
            await self.workflows.handle(event, req)
        else:
            await self.actions.handle(event, req)
        return event

    async def wait_type(self, type: str, timeout: float = 10) -> CloudEvent:
        async with asyncio.timeout(timeout):
            while True:
                for e in self.producer.events(topics.RESULTS):
                    if e.type == type:
                        return e
                await asyncio.sleep(0.01)


def catalog_with(tmp_path: Path, text: str) -> Catalog:
    (tmp_path / "wf.yaml").write_text("kind: workflow\nname: wf\n" + textwrap.dedent(text))
    catalog = load_catalog(pool="t", modules=[__name__])
    return load_catalog(pool="t", dirs=[tmp_path], modules=[__name__]) if catalog else catalog


BRANCHES = """
params: {type: object, properties: {who: {type: string}}, required: [who]}
tasks:
  first:
    action: core.echo
    input: {message: "{{ input.who }}"}
    next: [{on: success, do: [left, right]}]
  left: {action: core.echo, input: {message: L}, next: [{do: join}]}
  right: {action: core.echo, input: {message: R}, next: [{do: join}]}
  join:
    join: all
    type: approval
    message: "ok for {{ tasks.first.output.message }}?"
    timeout: 10
    next:
      - {on: success, do: done}
      - {on: failure, do: denied}
  done: {action: core.echo, input: {message: "yes by {{ tasks.join.output.by }}"}}
  denied: {action: core.echo, input: {message: "no"}}
output: {result: "{{ tasks.done.output.message if 'done' in tasks else tasks.denied.output.message }}", left: "{{ tasks.left.output.message }}"}
"""


@pytest.mark.parametrize("approved", [True, False])
async def test_branches_join_then_approval_decides_the_path(tmp_path: Path, approved: bool) -> None:
    h = Harness(catalog_with(tmp_path, BRANCHES))
    run = asyncio.create_task(h.request("wf", {"who": "ann"}))
    waiting = await h.wait_type("whale.workflow.task.waiting")
    assert waiting.subject == waiting.data["run_id"]
    assert waiting.data["output"]["message"] == "ok for ann?"
    run_id = waiting.data["run_id"]
    await h.store.put(
        h.store.approval_key(run_id, "join"),
        {
            "kind": "approval",
            "run_id": run_id,
            "task": "join",
            "approved": approved,
            "by": "bob",
            "comment": "c",
        },
        kind=APPROVAL_STATE,
    )
    await asyncio.wait_for(run, 10)
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed"
    assert end.data["output"] == {"result": "yes by bob" if approved else "no", "left": "L"}
    tasks = [e.data["task"] for e in h.producer.events(topics.RESULTS, "whale.workflow.task.succeeded")]
    assert tasks[0] == "first" and set(tasks[1:3]) == {"left", "right"}
    assert end.data["tasks"]["join"] == ("succeeded" if approved else "failed")
    assert (
        end.extensions["causationid"]
        == h.producer.events(topics.RESULTS, "whale.workflow.started")[0].extensions["causationid"]
    )


async def test_approval_timeout_fails_the_task(tmp_path: Path) -> None:
    text = "tasks:\n  ask: {type: approval, timeout: 0.2}\n"
    h = Harness(catalog_with(tmp_path, text))
    await h.request("wf", {})
    assert h.producer.events(topics.RESULTS, "whale.workflow.task.timed_out")
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.failed"
    assert "no approval within" in end.data["error"]["message"]


async def test_task_retry_with_backoff_then_failure_transition(tmp_path: Path) -> None:
    text = """
    tasks:
      flaky:
        action: core.fail
        input: {message: nope, retryable: true}
        retry: {count: 2, delay: 0.05, backoff: 2}
        next: [{on: failure, when: "{{ result.error.retryable }}", do: cleanup}]
      cleanup: {action: core.noop}
    """
    h = Harness(catalog_with(tmp_path, text))
    await h.request("wf", {})
    starts = [
        e.data["attempt"]
        for e in h.producer.events(topics.RESULTS, "whale.workflow.task.started")
        if e.data["task"] == "flaky"
    ]
    assert starts == [1, 2, 3]
    assert h.producer.events(topics.RESULTS, "whale.workflow.")[-1].type == "whale.workflow.completed"


async def test_unhandled_failure_and_workflow_timeout_fail_the_run(tmp_path: Path) -> None:
    h = Harness(catalog_with(tmp_path, "tasks:\n  a: {action: core.fail}\n"))
    await h.request("wf", {})
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert (
        end.type == "whale.workflow.failed"
        and end.data["error"]["message"] == "task 'a' failed: failed on purpose"
    )
    h2 = Harness(
        catalog_with(tmp_path, "timeout: 0.3\ntasks:\n  a: {action: core.sleep, input: {seconds: 5}}\n")
    )
    await h2.request("wf", {})
    end = h2.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.failed" and "timed out" in end.data["error"]["message"]


async def test_invalid_workflow_input_fails_with_problems(tmp_path: Path) -> None:
    h = Harness(catalog_with(tmp_path, BRANCHES))
    await h.request("wf", {"who": 5})
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.failed"
    assert end.data["error"]["problems"] == [{"field": "who", "message": "5 is not of type 'string'"}]


RESUME = """
tasks:
  one: {action: test.counted, input: {seconds: 0}, next: [{do: two}]}
  two: {action: "{{ACTION}}", input: {seconds: 30}, next: [{on: always, do: three}]}
  three: {action: test.counted, input: {seconds: 0}}
"""


@pytest.mark.parametrize("interrupted", ["test.counted", "test.slow-once"])
async def test_resume_after_a_crash_skips_finished_tasks_and_retries_or_abandons(
    tmp_path: Path, interrupted: str
) -> None:
    CALLS.clear()
    h = Harness(catalog_with(tmp_path, RESUME.replace("{{ACTION}}", interrupted)))
    first = asyncio.create_task(h.request("wf", {}))
    async with asyncio.timeout(10):
        while not any(
            e.data.get("task") == "two"
            for e in h.producer.events(topics.RESULTS, "whale.workflow.task.started")
        ):
            await asyncio.sleep(0.01)
    first.cancel()  # the executor dies while task two runs
    with pytest.raises(asyncio.CancelledError):
        await first
    h.fresh()
    (tmp_path / "wf.yaml").write_text((tmp_path / "wf.yaml").read_text().replace("seconds: 30", "seconds: 0"))
    h.catalog.workflows["wf"].tasks["two"].input = {"seconds": 0}
    await asyncio.wait_for(h.request("wf", {}), 10)
    assert CALLS.get("one") == 1  # finished before the crash: not run again
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed"
    if interrupted == "test.counted":
        assert CALLS.get("two") == 2 and end.data["tasks"]["two"] == "succeeded"
    else:
        assert CALLS.get("slow-once") == 1 and end.data["tasks"]["two"] == "abandoned"
        abandoned = h.producer.events(topics.RESULTS, "whale.workflow.task.abandoned")[0]
        assert "not idempotent" in abandoned.data["error"]["message"]
    assert CALLS.get("three") == 1


async def test_redelivered_finished_request_republishes_the_same_result(tmp_path: Path) -> None:
    h = Harness(catalog_with(tmp_path, "tasks:\n  a: {action: test.counted, input: {seconds: 0}}\n"))
    CALLS.clear()
    await h.request("wf", {})
    await h.request("wf", {})
    ends = h.producer.events(topics.RESULTS, "whale.workflow.completed")
    assert len(ends) == 2 and ends[0].id == ends[1].id
    assert CALLS == {"a": 1}


async def test_action_request_effectively_once_and_interrupted_non_idempotent_is_abandoned(
    tmp_path: Path,
) -> None:
    h = Harness(catalog_with(tmp_path, "tasks:\n  a: {action: core.noop}\n"))
    await h.request("core.echo", {"message": 1}, key="e1", kind="action")
    await h.request("core.echo", {"message": 1}, key="e1", kind="action")
    done = h.producer.events(topics.RESULTS, "whale.action.succeeded")
    assert len(done) == 2 and done[0].id == done[1].id
    await h.request("core.echo", {"wrong": 1}, key="e2", kind="action")
    failed = h.producer.events(topics.RESULTS, "whale.action.failed")[0]
    assert failed.data["error"]["problems"] == [{"field": "message", "message": "Field required"}]
    CALLS.clear()
    crash = asyncio.create_task(h.request("test.slow-once", {"seconds": 30}, key="e3", kind="action"))
    async with asyncio.timeout(10):
        while "slow-once" not in CALLS:
            await asyncio.sleep(0.01)
    crash.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crash
    h.fresh()
    await h.request("test.slow-once", {"seconds": 0}, key="e3", kind="action")
    abandoned = h.producer.events(topics.RESULTS, "whale.action.abandoned")[0]
    assert "not idempotent" in abandoned.data["error"]["message"] and CALLS["slow-once"] == 1


async def test_every_result_event_matches_its_published_json_schema(tmp_path: Path) -> None:
    import json

    from jsonschema import Draft202012Validator

    h = Harness(catalog_with(tmp_path, BRANCHES))
    run = asyncio.create_task(h.request("wf", {"who": "ann"}))
    waiting = await h.wait_type("whale.workflow.task.waiting")
    await h.store.put(
        h.store.approval_key(waiting.data["run_id"], "join"),
        {
            "kind": "approval",
            "run_id": waiting.data["run_id"],
            "task": "join",
            "approved": False,
            "by": "bob",
        },
        kind=APPROVAL_STATE,
    )
    await asyncio.wait_for(run, 10)
    await h.request("core.echo", {"message": 1}, key="a1", kind="action")
    await h.request("core.echo", {}, key="a2", kind="action")
    await h.request("core.fail", {}, key="a3", kind="action")
    await h.request("wf", {"who": 1}, key="w2")
    await Harness(catalog_with(tmp_path, "tasks:\n  a: {type: approval, timeout: 0.05}\n")).request("wf", {})
    schemas = Path(__file__).parents[2] / "schemas" / "events"
    types = set()
    for event in h.producer.events(topics.RESULTS):
        schema = json.loads((schemas / f"{event.type}.json").read_text())
        assert schema["$id"] == event.type
        Draft202012Validator(schema).validate(event.data)
        types.add(event.type)
    assert {"whale.workflow.task.waiting", "whale.action.failed", "whale.workflow.failed"} <= types
    states = h.producer.events("whale.executor.state")
    assert {e.type for e in states} == {"whale.executor.run", "whale.executor.approval"}
    for event in states:
        schema = json.loads((schemas / f"{event.type}.json").read_text())
        Draft202012Validator(schema).validate(event.data)


async def test_interrupted_idempotent_action_request_runs_again_as_attempt_two(tmp_path: Path) -> None:
    h = Harness(catalog_with(tmp_path, "tasks:\n  a: {action: core.noop}\n"))
    CALLS.clear()
    crash = asyncio.create_task(h.request("test.counted", {"seconds": 30}, key="i1", kind="action"))
    async with asyncio.timeout(10):
        while "?" not in CALLS:
            await asyncio.sleep(0.01)
    crash.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crash
    h.fresh()
    await h.request("test.counted", {"seconds": 0}, key="i1", kind="action")
    (done,) = h.producer.events(topics.RESULTS, "whale.action.succeeded")
    assert done.data["attempt"] == 2 and CALLS["?"] == 2


async def test_a_transition_recorded_but_not_published_before_a_crash_is_published_on_resume(
    tmp_path: Path,
) -> None:
    """The executor dies between recording a transition and publishing its event: the resumed run
    publishes that event (same id), so no transition notice is lost."""
    CALLS.clear()
    h = Harness(catalog_with(tmp_path, RESUME.replace("{{ACTION}}", "test.counted")))
    lost: list[CloudEvent] = []
    original = h.producer.send

    async def dies_after_recording(topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        if topic == "whale.results" and event.data.get("task") == "two" and not lost:
            lost.append(event)
            raise asyncio.CancelledError  # the process is gone before the event left
        return await original(topic, event, key=key)

    h.producer.send = dies_after_recording  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(h.request("wf", {}), 10)
    h.producer.send = original  # type: ignore[method-assign]
    assert lost and lost[0].type == "whale.workflow.task.started"
    assert lost[0].id not in {e.id for e in h.producer.events(topics.RESULTS)}
    h.fresh()
    h.catalog.workflows["wf"].tasks["two"].input = {"seconds": 0}
    await asyncio.wait_for(h.request("wf", {}), 10)
    assert lost[0].id in {e.id for e in h.producer.events(topics.RESULTS)}
    assert h.producer.events(topics.RESULTS, "whale.workflow.")[-1].type == "whale.workflow.completed"
