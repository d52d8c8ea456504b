"""Subworkflows: a workflow task that runs another workflow of the pool as a child run.

.. code-block:: yaml

    restart:
      workflow: host.restart              # a catalogued workflow of the same pool
      input: {host: "{{ input.host }}"}   # rendered like an action's params, checked by its params
      next: [{do: announce}]

The child runs inside the parent's run, in the same executor: no extra request goes over Kafka, and
its whole state is recorded in the parent's (the task's ``child``: run id ``<parent run>/<task>``,
``parent_run``, its own tasks, failures and result), written with every step of the child like any
other transition of the parent. So a crash is handled by the parent's rules: a resumed parent
resumes the child where its state stands (finished child tasks are kept, an interrupted action runs
again only when idempotent), and a child that had finished is never run again. The task succeeds when
the child completes, its output being the child's ``output``; it fails with the child's error
otherwise. Cancelling or pausing the parent cancels or pauses the child (they share the parent's
cancel and pause keys). The child publishes no ``whale.workflow.*`` events of its own: the parent's
task events report it. On load, unknown workflows, a workflow that runs itself (directly or through
others) and chains deeper than the executor's ``max_workflow_depth`` are refused
(:func:`~whale_executor.workflow.graph.check_nesting`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from whale.rules import templating
from whale_executor import metrics
from whale_executor.results import (
    FAILED,
    SUCCEEDED,
    TASK_PREFIX,
    WORKFLOW_CANCELLED,
    WORKFLOW_COMPLETED,
    WORKFLOW_FAILED,
    Outcome,
)
from whale_executor.runner import now_text
from whale_executor.workflow.engine import Run
from whale_executor.workflow.model import Task, Workflow

if TYPE_CHECKING:
    from whale.cloudevent import CloudEvent

UNFINISHED = ("pending", "running", "waiting")


class ChildRun(Run):
    """A workflow run nested in a task of ``parent``: its state lives in the parent's."""

    def __init__(self, parent: Run, workflow: Workflow | None, state: dict[str, Any]) -> None:
        super().__init__(parent.o, workflow, parent.request, parent.key, state)
        self.parent = parent
        self.control_id = parent.control_id  # the parent's cancel and pause apply to the child

    async def _save(self, event: CloudEvent | None = None) -> None:
        """Record the child's step in the parent's state; the child's own events are not published."""
        await self.parent.save_nested()

    async def _end(self, type: str, *, output: Any = None, error: Any = None, **extra: Any) -> None:
        if type == FAILED:
            type = WORKFLOW_FAILED
        self.state["status"] = "finished"
        self.state["result"] = {"type": type, "output": output, "error": error}
        self.state["finished_at"] = now_text()
        metrics.WORKFLOWS.labels(
            pool=self.o.pool, workflow=self.state["workflow"], result=type.rsplit(".", 1)[-1]
        ).inc()
        async with self._lock:
            await self._save()


def child_state(run: Run, task: Task, params: Any) -> dict[str, Any]:
    s = run.state
    return {
        "kind": "workflow",
        "status": "new",
        "run_id": f"{run.run_id}/{task.name}",
        "parent_run": run.run_id,
        "parent_task": task.name,
        "workflow": task.workflow,
        "request_id": s["request_id"],
        "idempotency_key": f"{s['idempotency_key']}/{task.name}",
        "target": {"kind": "workflow", "name": task.workflow},
        "input": params,
        "started_at": time.time(),
        "tasks": {},
        "scheduled": [],
        "joins": {},
        "failures": [],
    }


async def run_child(run: Run, task: Task, previous: dict[str, Any] | None) -> Outcome:
    """Run ``task``'s child workflow (new, or resumed from the child state ``previous`` recorded)."""
    assert task.workflow is not None
    started = time.monotonic()
    state = previous.get("child") if previous is not None else None
    if state is None:
        try:
            params = templating.render_value(task.input, run.context(), path="input")
        except templating.TemplateError as exc:
            error = {"message": f"task {task.name!r}: {exc.message}", "retryable": False}
            return Outcome(FAILED, None, error)
        state = child_state(run, task, params)
        async with run._lock:
            run.state["tasks"][task.name] = {
                "status": "running",
                "attempt": 1,
                "started_at": now_text(),
                "child": state,
            }
            output = {"workflow": task.workflow, "child_run": state["run_id"]}
            await run._save(run._event(TASK_PREFIX + "started", task=task.name, attempt=1, output=output))
    if state.get("status") != "finished":
        child = ChildRun(run, run.o.catalog.workflows.get(task.workflow), state)
        try:
            await child.run()
        except asyncio.CancelledError:  # the parent was cancelled or timed out: so is the child
            for t in state["tasks"].values():
                if t.get("status") in UNFINISHED:
                    t["status"] = "cancelled"
            state["scheduled"] = []
            state["status"] = "finished"
            state["result"] = {"type": WORKFLOW_CANCELLED, "output": None, "error": None}
            raise
    return _outcome(task, state, round((time.monotonic() - started) * 1000))


def _outcome(task: Task, state: dict[str, Any], ms: int) -> Outcome:
    result = state.get("result") or {}
    if result.get("type") == WORKFLOW_COMPLETED:
        return Outcome(SUCCEEDED, result.get("output"), None, ms)
    error = dict(result.get("error") or {})
    word = "was cancelled" if result.get("type") == WORKFLOW_CANCELLED else "failed"
    message = f"workflow {task.workflow!r} (run {state['run_id']}) {word}"
    if error.get("message"):
        message += f": {error['message']}"
    return Outcome(
        FAILED,
        result.get("output"),
        {
            **error,
            "message": message,
            "retryable": bool(error.get("retryable")),
            "child_run": state["run_id"],
        },
        ms,
    )
