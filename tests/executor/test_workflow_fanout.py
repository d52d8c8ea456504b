"""Fan-out tasks (with_items): order, concurrency, failure thresholds, skipped items, the item cap,
load-time checks and resume after a crash (finished items kept, interrupted ones re-run or abandoned)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from whale_executor.actions.base import ActionContext
from whale_executor.actions.python import action
from whale_executor.catalog import Catalog, load_catalog
from whale_executor.errors import ActionFailed, CatalogError
from whale_executor.workflow.model import FanOut

from whale import topics
from whale.inventory import Host, Inventory

from .test_workflow_engine import Harness

SCHEMAS = Path(__file__).parents[2] / "schemas" / "events"


class HostParams(BaseModel):
    host: str


class Done(BaseModel):
    host: str


RUNS: list[str] = []  # hosts in the order their runs started
SLEEP: dict[str, float] = {}  # seconds a host's run takes
LIVE = {"now": 0, "max": 0}


async def _visit(params: HostParams) -> Done:
    RUNS.append(params.host)
    LIVE["now"] += 1
    LIVE["max"] = max(LIVE["max"], LIVE["now"])
    try:
        await asyncio.sleep(SLEEP.get(params.host, 0))
    finally:
        LIVE["now"] -= 1
    if params.host.startswith("bad"):
        raise ActionFailed(f"{params.host} refused")
    return Done(host=params.host)


@action(name="test.visit", params=HostParams, output=Done, idempotent=True)
async def visit(params: HostParams, ctx: ActionContext) -> Done:
    return await _visit(params)


KEYS: list[tuple[str, int]] = []  # (idempotency key, attempt) of each run of test.flaky


@action(name="test.flaky", params=HostParams, output=Done, idempotent=True)
async def flaky(params: HostParams, ctx: ActionContext) -> Done:
    KEYS.append((ctx.idempotency_key, ctx.attempt))
    if params.host == "flaky" and ctx.attempt == 1:
        raise ActionFailed("first try fails", retryable=True)
    return Done(host=params.host)


@action(name="test.visit-once", params=HostParams, output=Done, idempotent=False)
async def visit_once(params: HostParams, ctx: ActionContext) -> Done:
    return await _visit(params)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RUNS.clear()
    SLEEP.clear()
    KEYS.clear()
    LIVE.update(now=0, max=0)


def catalog(tmp_path: Path, text: str) -> Catalog:
    (tmp_path / "wf.yaml").write_text("kind: workflow\nname: wf\n" + textwrap.dedent(text))
    return load_catalog(pool="t", dirs=[tmp_path], modules=[__name__])


def fanout(action: str = "test.visit", **options: Any) -> str:
    extra = "".join(f"\n    {k}: {json.dumps(v)}" for k, v in options.items())
    return f"""
params: {{type: object, properties: {{hosts: {{type: array}}}}}}
tasks:
  restart:
    action: {action}
    with_items: "{{{{ input.hosts }}}}"
    input: {{host: "{{{{ item }}}}"}}{extra}
output: {{ok: "{{{{ tasks.restart.output.succeeded }}}}"}}
"""


def statuses(event: Any) -> list[str]:
    return [r["status"] for r in event.data["output"]["items"]]


async def finished_task(h: Harness) -> Any:
    """The last event of task ``restart`` (its end, once the request is handled)."""
    return [
        e
        for e in h.producer.events(topics.RESULTS, "whale.workflow.task.")
        if e.data.get("task") == "restart"
    ][-1]


async def test_two_at_a_time_stops_after_two_failures_and_skips_the_rest(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout(concurrency=2, stop_after_failures=2)))
    SLEEP["ok1"] = 0.3  # still running while both bad hosts fail
    await h.request("wf", {"hosts": ["ok1", "bad1", "bad2", "ok2", "ok3"]})
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.failed"
    assert statuses(task) == ["succeeded", "failed", "failed", "skipped", "skipped"]
    items = task.data["output"]["items"]
    assert [r["item"] for r in items] == ["ok1", "bad1", "bad2", "ok2", "ok3"]
    assert items[0]["output"] == {"host": "ok1"} and items[1]["error"]["message"] == "bad1 refused"
    assert items[3]["output"] is None and items[3]["error"] is None
    assert task.data["error"]["message"] == (
        "task 'restart': 2 of 5 items failed (stop_after_failures 2); 2 not started"
    )
    assert RUNS == ["ok1", "bad1", "bad2"] and LIVE["max"] == 2
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.failed" and end.data["tasks"] == {"restart": "failed"}
    (failure,) = end.data["error"]["failures"]
    assert failure["task"] == "restart" and failure["output"] == task.data["output"]


async def test_failures_below_the_threshold_let_the_task_succeed_with_every_item_run(
    tmp_path: Path,
) -> None:
    h = Harness(catalog(tmp_path, fanout(concurrency=2, stop_after_failures=2)))
    for host in ("a", "b", "c", "d"):
        SLEEP[host] = 0.05
    await h.request("wf", {"hosts": ["a", "bad", "b", "c", "d"]})
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.succeeded"
    assert statuses(task) == ["succeeded", "failed", "succeeded", "succeeded", "succeeded"]
    assert {k: task.data["output"][k] for k in ("total", "succeeded", "failed", "skipped")} == {
        "total": 5,
        "succeeded": 4,
        "failed": 1,
        "skipped": 0,
    }
    assert LIVE["max"] == 2 and sorted(RUNS) == ["a", "b", "bad", "c", "d"]
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed" and end.data["output"] == {"ok": 4}


async def test_without_a_threshold_the_first_failure_stops_the_fan_out(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout(concurrency=1)))
    await h.request("wf", {"hosts": ["a", "bad", "b"]})
    task = await finished_task(h)
    assert statuses(task) == ["succeeded", "failed", "skipped"] and RUNS == ["a", "bad"]
    assert "(any failure fails the task)" in task.data["error"]["message"]


async def test_without_concurrency_every_item_runs_at_once(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout()))
    for host in ("a", "b", "c"):
        SLEEP[host] = 0.1
    await h.request("wf", {"hosts": ["a", "b", "c"]})
    assert LIVE["max"] == 3
    assert h.producer.events(topics.RESULTS, "whale.workflow.")[-1].type == "whale.workflow.completed"


@pytest.mark.parametrize(
    ("failed", "total", "crossed"),
    [(2, 4, False), (3, 4, True), (0, 0, False)],
)
def test_max_failure_percent_is_crossed_above_the_share(failed: int, total: int, crossed: bool) -> None:
    assert FanOut([], None, None, 50).crossed(failed, total) is crossed
    assert FanOut([], None, 3, 50).crossed(3, 100) is True  # either threshold stops it


async def test_max_failure_percent_stops_once_more_than_that_share_failed(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout(concurrency=1, max_failure_percent=50)))
    await h.request("wf", {"hosts": ["bad1", "bad2", "bad3", "ok"]})
    task = await finished_task(h)
    assert statuses(task) == ["failed", "failed", "failed", "skipped"]  # 2 of 4 is not more than 50 %
    assert task.data["error"]["message"] == (
        "task 'restart': 3 of 4 items failed (max_failure_percent 50); 1 not started"
    )


async def test_retries_and_idempotency_keys_are_per_item(tmp_path: Path) -> None:
    text = fanout(action="test.flaky", concurrency=1).replace(
        "    concurrency: 1", "    concurrency: 1\n    retry: {count: 1, delay: 0}"
    )
    h = Harness(catalog(tmp_path, text))
    await h.request("wf", {"hosts": ["a", "flaky"]})
    assert KEYS == [("k1/restart/0", 1), ("k1/restart/1", 1), ("k1/restart/1", 2)]
    task = await finished_task(h)
    assert statuses(task) == ["succeeded", "succeeded"]


async def test_item_outputs_are_cut_to_their_share_of_the_budget(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout()))
    h.workflows.item_output_budget = 1024  # two items: 512 characters of JSON each
    long = "x" * 600
    await h.request("wf", {"hosts": ["short", long]})
    task = await finished_task(h)
    first, second = task.data["output"]["items"]
    assert first["output"] == {"host": "short"}
    assert second["output"] == {"truncated": True, "json": json.dumps({"host": long})[:512]}
    assert second["item"] == long  # the item itself is the request's own input, kept whole


async def test_an_empty_list_succeeds_with_no_items(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout()))
    await h.request("wf", {"hosts": []})
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.succeeded" and task.data["output"]["items"] == []


async def test_too_many_items_or_no_list_fail_the_task_before_anything_runs(tmp_path: Path) -> None:
    h = Harness(catalog(tmp_path, fanout()))
    h.workflows.max_items = 3
    await h.request("wf", {"hosts": ["a", "b", "c", "d"]})
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.failed" and RUNS == []
    assert task.data["error"]["message"] == (
        "task 'restart': with_items has 4 items, more than the 3 allowed (WHALE_EXECUTOR_MAX_ITEMS);"
        " nothing was run"
    )
    h = Harness(catalog(tmp_path, fanout().replace("input.hosts", "input.hosts[0]")))
    await h.request("wf", {"hosts": [{"a": 1}]})
    task = await finished_task(h)
    assert task.data["error"]["message"] == "task 'restart': with_items rendered to a dict, not a list"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tasks:\n  a: {action: core.noop, concurrency: 2}\n",
            "task 'a': concurrency only goes with with_items",
        ),
        (
            "tasks:\n  a: {type: approval, with_items: [1]}\n",
            "task 'a': with_items runs an action; an approval task cannot fan out",
        ),
        (
            "tasks:\n  a: {action: core.echo, input: {message: '{{ item.host }}'}}\n",
            "task 'a': input: unknown name 'item' (templates see input, tasks, run_id, result)"
            " (item: only in the input of a task with with_items)",
        ),
        (
            "tasks:\n  a: {action: core.noop, with_items: [1], stop_after_failures: 0}\n",
            "task 'a': stop_after_failures must be a positive integer",
        ),
        (
            "tasks:\n  a: {action: core.noop, with_items: [1], max_failure_percent: 100}\n",
            "task 'a': max_failure_percent must be a number from 0 to below 100",
        ),
        (
            "tasks:\n  a: {action: core.noop, with_items: 3}\n",
            "task 'a': with_items must be a list or a template rendering to one",
        ),
    ],
)
def test_fan_out_mistakes_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError) as err:
        catalog(tmp_path, text)
    assert message in str(err.value)


async def test_a_literal_list_with_templated_items(tmp_path: Path) -> None:
    text = """
    params: {type: object, properties: {site: {type: string}}}
    tasks:
      restart:
        action: test.visit
        with_items: ["{{ input.site }}-1", "{{ input.site }}-2"]
        input: {host: "{{ item }}"}
    """
    h = Harness(catalog(tmp_path, text))
    await h.request("wf", {"site": "par"})
    assert sorted(RUNS) == ["par-1", "par-2"]
    task = await finished_task(h)
    assert [r["item"] for r in task.data["output"]["items"]] == ["par-1", "par-2"]


@pytest.mark.parametrize("name", ["test.visit", "test.visit-once"])
async def test_resume_keeps_finished_items_and_reruns_or_abandons_the_interrupted_one(
    tmp_path: Path, name: str
) -> None:
    h = Harness(catalog(tmp_path, fanout(action=name, concurrency=1, stop_after_failures=2)))
    SLEEP["b"] = 30
    first = asyncio.create_task(h.request("wf", {"hosts": ["a", "b", "c"]}))
    async with asyncio.timeout(10):
        while "b" not in RUNS:
            await asyncio.sleep(0.01)
    first.cancel()  # the executor dies while item b runs
    with pytest.raises(asyncio.CancelledError):
        await first
    SLEEP["b"] = 0
    h.fresh()
    await asyncio.wait_for(h.request("wf", {"hosts": ["a", "b", "c"]}), 10)
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.succeeded"
    items = task.data["output"]["items"]
    if name == "test.visit":
        assert RUNS == ["a", "b", "b", "c"] and statuses(task) == ["succeeded"] * 3
    else:
        assert RUNS == ["a", "b", "c"] and statuses(task) == ["succeeded", "abandoned", "succeeded"]
        assert "item 1 of task 'restart'" in items[1]["error"]["message"]
        assert "not idempotent" in items[1]["error"]["message"]
    schema = Draft202012Validator(json.loads((SCHEMAS / "whale.executor.run.json").read_text()))
    for event in h.producer.events("whale.executor.state"):
        schema.validate(event.data)
    for event in h.producer.events(topics.RESULTS):
        Draft202012Validator(json.loads((SCHEMAS / f"{event.type}.json").read_text())).validate(event.data)


def web_inventory(*names: str) -> Inventory:
    def host(name: str, group: str) -> Host:
        return Host(name=name, address="127.0.0.1", user="ops", groups=(group,), labels={"role": group})

    return Inventory([*(host(n, "web") for n in names), host("db-1", "db")])


HOSTS_FANOUT = """
params: {type: object, properties: {role: {type: string}}}
tasks:
  restart:
    action: test.visit
    with_hosts: {group: web, labels: {role: "{{ input.role }}"}}
    input: {host: "{{ item }}"}
    concurrency: 2
    stop_after_failures: 2
"""


async def test_with_hosts_runs_over_the_selected_hosts_two_at_a_time_and_stops_after_two_failures(
    tmp_path: Path,
) -> None:
    h = Harness(catalog(tmp_path, HOSTS_FANOUT))
    h.workflows.inventory = web_inventory("ok-3", "bad-1", "bad-2", "ok-4", "ok-0")
    SLEEP["ok-0"] = 0.3
    await h.request("wf", {"role": "web"})
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.failed"
    items = task.data["output"]["items"]
    assert [(r["item"], r["status"]) for r in items] == [
        ("bad-1", "failed"),
        ("bad-2", "failed"),
        ("ok-0", "skipped"),
        ("ok-3", "skipped"),
        ("ok-4", "skipped"),
    ]
    assert RUNS == ["bad-1", "bad-2"] and "db-1" not in RUNS
    (started,) = h.producer.events(topics.RESULTS, "whale.workflow.task.started")
    assert started.data["output"] == {"action": "test.visit", "items": 5}


async def test_with_hosts_matching_nothing_or_without_inventory_fails_before_anything_runs(
    tmp_path: Path,
) -> None:
    h = Harness(catalog(tmp_path, HOSTS_FANOUT))
    h.workflows.inventory = web_inventory("ok-1")
    await h.request("wf", {"role": "cache"}, key="k-none")
    task = await finished_task(h)
    assert task.type == "whale.workflow.task.failed" and RUNS == []
    assert task.data["error"] == {
        "message": "task 'restart': with_hosts: no inventory host matches the selector group=web, role=cache",
        "retryable": False,
    }
    h.workflows.inventory = None
    await h.request("wf", {"role": "web"}, key="k-no-inventory")
    task = await finished_task(h)
    assert "this executor has no inventory" in task.data["error"]["message"] and RUNS == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('    with_items: ["a"]\n', "give either with_items or with_hosts"),
        ("", ""),
    ],
)
def test_with_hosts_mistakes_are_refused_at_load(tmp_path: Path, extra: str, message: str) -> None:
    text = HOSTS_FANOUT.replace("    input:", extra + "    input:")
    if not message:
        text = HOSTS_FANOUT.replace('{group: web, labels: {role: "{{ input.role }}"}}', "[web-1]")
        message = "with_hosts must be a selector"
    with pytest.raises(CatalogError, match=message):
        catalog(tmp_path, text)
