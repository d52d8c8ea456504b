"""Subworkflows (a ``workflow:`` task runs another workflow of the pool as a child run): load-time
checks (unknown workflow, a workflow running itself, depth), the child's outcome and output becoming
the task's, its state recorded in the parent's, resume after a crash, and cancel."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
from whale_executor.catalog import Catalog, load_catalog
from whale_executor.errors import CatalogError

from whale import runs, topics

from .test_workflow_engine import CALLS, Harness

CHILD = """
kind: workflow
name: child
params: {type: object, properties: {who: {type: string}}, required: [who]}
tasks:
  greet:
    action: core.echo
    input: {message: "hello {{ input.who }}"}
    next: [{when: "{{ input.who == 'bob' }}", do: boom}]
  boom: {action: core.fail, input: {message: "no bob"}}
output: {said: "{{ tasks.greet.output.message }}"}
"""

PARENT = """
kind: workflow
name: parent
params: {type: object, properties: {who: {type: string}}}
tasks:
  sub:
    workflow: child
    input: {who: "{{ input.who }}"}
    next: [{on: failure, do: rescue}]
  rescue: {action: core.echo, input: {message: "child failed"}}
output: {child: "{{ tasks.sub.output }}"}
"""


def catalog_of(tmp_path: Path, *docs: str, depth: int = 5) -> Catalog:
    for i, doc in enumerate(docs):
        (tmp_path / f"wf{i}.yaml").write_text(textwrap.dedent(doc))
    return load_catalog(pool="t", dirs=[tmp_path], modules=["tests.executor.test_workflow_engine"],
                        max_workflow_depth=depth)  # fmt: skip


def chain(name: str, child: str | None) -> str:
    task = f"{{workflow: {child}}}" if child else "{action: core.noop}"
    return f"kind: workflow\nname: {name}\ntasks:\n  t: {task}\n"


def test_a_workflow_task_naming_an_unknown_workflow_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"wf0.yaml: task 't': unknown workflow 'nope'"):
        catalog_of(tmp_path, chain("a", "nope"))


def test_a_workflow_running_itself_is_refused_naming_the_chain(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"workflow 'a' runs itself .*: a -> b -> c -> a"):
        catalog_of(tmp_path, chain("a", "b"), chain("b", "c"), chain("c", "a"))
    with pytest.raises(CatalogError, match=r"runs itself .*: d -> d"):
        (tmp_path / "self").mkdir()
        catalog_of(tmp_path / "self", chain("d", "d"))


def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    docs = [chain("a", "b"), chain("b", "c"), chain("c", None)]
    assert set(catalog_of(tmp_path, *docs, depth=3).workflows) == {"a", "b", "c"}
    with pytest.raises(CatalogError, match=r"workflow 'a' nests 3 workflows deep: a -> b -> c \(at most 2"):
        catalog_of(tmp_path, *docs, depth=2)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("{workflow: c, retry: {count: 1}}", "a workflow task takes no retry"),
        ("{workflow: c, action: core.noop}", "a workflow task runs no action"),
        ("{action: core.noop, workflow: c, type: action}", "workflow only goes with type: workflow"),
        ("{workflow: c, with_items: [1, 2]}", "with_items runs an action; a workflow task cannot fan out"),
        ("{type: workflow}", "workflow must name a catalogued workflow"),
    ],
)
def test_workflow_task_shape_is_checked(tmp_path: Path, task: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        catalog_of(tmp_path, chain("c", None), f"kind: workflow\nname: a\ntasks:\n  t: {task}\n")


def test_a_child_workflow_waiting_for_approval_is_refused(tmp_path: Path) -> None:
    child = "kind: workflow\nname: c\ntasks:\n  ask: {type: approval}\n"
    with pytest.raises(CatalogError, match=r"workflow 'c' has an approval task \('ask'\)"):
        catalog_of(tmp_path, child, chain("a", "c"))


def sub_record(h: Harness) -> dict[str, Any]:
    state = h.store.get(h.store.run_key("k1"))
    assert state is not None
    record: dict[str, Any] = state["tasks"]["sub"]
    return record


async def test_child_success_becomes_the_tasks_output_and_is_recorded_in_the_parent(tmp_path: Path) -> None:
    h = Harness(catalog_of(tmp_path, CHILD, PARENT))
    await asyncio.wait_for(h.request("parent", {"who": "ann"}), 10)
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed"
    assert end.data["output"] == {"child": {"said": "hello ann"}}
    assert end.data["tasks"] == {"sub": "succeeded"}
    record = sub_record(h)
    child = record["child"]
    parent_run = runs.run_id("workflow", h.store.run_key("k1"))
    assert child["run_id"] == f"{parent_run}/sub" and child["parent_run"] == parent_run
    assert child["tasks"]["greet"]["status"] == "succeeded"
    assert child["result"]["type"] == "whale.workflow.completed"
    started = h.producer.events(topics.RESULTS, "whale.workflow.task.started")[0]
    assert started.data["output"] == {"workflow": "child", "child_run": child["run_id"]}
    # the child publishes no run events of its own: one started and one end event, both the parent's
    assert [e.data["run_id"] for e in h.producer.events(topics.RESULTS)] == [parent_run] * 4


async def test_child_failure_fails_the_task_with_the_childs_error(tmp_path: Path) -> None:
    h = Harness(catalog_of(tmp_path, CHILD, PARENT))
    await asyncio.wait_for(h.request("parent", {"who": "bob"}), 10)
    failed = h.producer.events(topics.RESULTS, "whale.workflow.task.failed")[0]
    assert failed.data["task"] == "sub"
    assert failed.data["error"]["message"].startswith("workflow 'child' (run ")
    assert failed.data["error"]["message"].endswith("failed: task 'boom' failed: no bob")
    assert failed.data["error"]["child_run"] == sub_record(h)["child"]["run_id"]
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed"  # the failure transition handled it
    assert end.data["tasks"] == {"sub": "failed", "rescue": "succeeded"}


RESUMED_CHILD = """
kind: workflow
name: child
tasks:
  one: {action: test.counted, input: {seconds: 0}, next: [{do: two}]}
  two: {action: test.counted, input: {seconds: 30}}
output: {n: "{{ tasks.two.output.n }}"}
"""
RESUMED_PARENT = """
kind: workflow
name: parent
tasks:
  sub: {workflow: child}
output: {n: "{{ tasks.sub.output.n }}"}
"""


async def wait_child_task(h: Harness, name: str) -> None:
    async with asyncio.timeout(10):
        while True:
            state = h.store.get(h.store.run_key("k1")) or {}
            child = (state.get("tasks") or {}).get("sub", {}).get("child") or {}
            if (child.get("tasks") or {}).get(name, {}).get("status") == "running":
                return
            await asyncio.sleep(0.01)


async def test_a_parent_resumed_after_a_crash_resumes_its_child(tmp_path: Path) -> None:
    CALLS.clear()
    h = Harness(catalog_of(tmp_path, RESUMED_CHILD, RESUMED_PARENT))
    first = asyncio.create_task(h.request("parent", {}))
    await wait_child_task(h, "two")
    first.cancel()  # the executor dies while the child's task two runs
    with pytest.raises(asyncio.CancelledError):
        await first
    h.fresh()
    h.catalog.workflows["child"].tasks["two"].input = {"seconds": 0}
    await asyncio.wait_for(h.request("parent", {}), 10)
    assert CALLS == {"one": 1, "two": 2}  # one finished before the crash; two (idempotent) re-ran
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed" and end.data["output"] == {"n": 2}
    assert sub_record(h)["child"]["tasks"]["two"]["attempt"] == 2


async def test_cancelling_the_parent_cancels_the_child(tmp_path: Path) -> None:
    CALLS.clear()
    h = Harness(catalog_of(tmp_path, RESUMED_CHILD, RESUMED_PARENT))
    run = asyncio.create_task(h.request("parent", {}))
    await wait_child_task(h, "two")
    parent_run = runs.run_id("workflow", h.store.run_key("k1"))
    await h.store.put(h.store.cancel_key(parent_run), {"by": "ann"})
    await asyncio.wait_for(run, 10)
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.cancelled"
    child = sub_record(h)["child"]
    assert child["status"] == "finished" and child["tasks"]["two"]["status"] == "cancelled"
    assert CALLS == {"one": 1, "two": 1}


async def test_a_child_that_finished_before_the_crash_is_not_run_again(tmp_path: Path) -> None:
    """The executor dies after the child ended but before the parent recorded the task's end."""
    CALLS.clear()
    h = Harness(catalog_of(tmp_path, RESUMED_CHILD, RESUMED_PARENT))
    h.catalog.workflows["child"].tasks["two"].input = {"seconds": 0}
    await asyncio.wait_for(h.request("parent", {}), 10)
    assert CALLS == {"one": 1, "two": 1}
    key = h.store.run_key("k1")
    state = h.store.get(key)
    assert state is not None
    state.update(status="running", scheduled=[], failures=[])
    del state["result_event"], state["outbox"]
    state["tasks"]["sub"] = {"status": "running", "attempt": 1, "child": state["tasks"]["sub"]["child"]}
    await h.store.put(key, state)
    h.fresh()
    await asyncio.wait_for(h.request("parent", {}), 10)
    assert CALLS == {"one": 1, "two": 1}
    end = h.producer.events(topics.RESULTS, "whale.workflow.")[-1]
    assert end.type == "whale.workflow.completed" and end.data["output"] == {"n": 1}
