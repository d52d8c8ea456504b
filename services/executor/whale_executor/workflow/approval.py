"""Approval tasks: a workflow task that waits for a person's answer (``type: approval``).

The task is recorded ``waiting`` (its rendered ``message``, ``deadline``, ``approvers`` and
``response_schema``) and its waiting event asks the to-do stage to open a to-do; the answer arrives as
a decision in the executor's store (``approval_key``). A resumed run keeps waiting until the recorded
deadline. Approved: the task succeeds; denied: it fails; no answer by the deadline: it times out.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from whale.rules import templating
from whale_executor.results import FAILED, SUCCEEDED, TASK_PREFIX, TIMED_OUT, Outcome
from whale_executor.runner import now_text
from whale_executor.workflow.model import Task

if TYPE_CHECKING:
    from whale_executor.workflow.engine import Run


async def wait_approval(run: Run, task: Task, previous: dict[str, Any] | None) -> Outcome:
    """Wait for a person's answer to an approval task (new, or resumed from ``previous``): record the
    task ``waiting`` with its rendered question and deadline, then wait for the decision."""
    started = time.monotonic()
    if previous is not None and previous.get("status") == "waiting":
        deadline = previous.get("deadline")
        message = previous.get("message")
    else:
        deadline = time.time() + task.timeout if task.timeout else None
        message = None
        if task.message:
            try:
                message = templating.render(task.message, run.context())
            except templating.TemplateError as exc:
                return Outcome(
                    FAILED, None, {"message": f"task {task.name!r}: {exc.message}", "retryable": False}
                )
        async with run._lock:
            run.state["tasks"][task.name] = {
                "status": "waiting",
                "deadline": deadline,
                "message": message,
                "since": now_text(),
                "approvers": task.approvers,
                "response_schema": task.response_schema,
            }
            await run._save(
                run._event(
                    TASK_PREFIX + "waiting",
                    task=task.name,
                    output={
                        "message": message,
                        "deadline": deadline,
                        "todo_request": approval_todo(run.run_id, run.state["workflow"], task, message),
                    },
                )
            )
    remaining = None if deadline is None else max(0.0, deadline - time.time())
    decision = await run.o.store.wait(run.o.store.approval_key(run.run_id, task.name), remaining)
    ms = round((time.monotonic() - started) * 1000)
    todo = {"key": f"approval:{run.run_id}.{task.name}"}
    if decision is None:
        error = {"message": f"no approval within {task.timeout:g}s", "retryable": False}
        return Outcome(
            TIMED_OUT, {"todo_resolve": {**todo, "by": "whale", "resolution": "timed out"}}, error, ms
        )
    output = {k: decision.get(k) for k in ("approved", "by", "comment", "response", "answered_by")}
    word = "approved" if decision.get("approved") else "denied"
    output["todo_resolve"] = {**todo, "by": decision.get("by") or "someone", "resolution": word}
    if decision.get("approved"):
        return Outcome(SUCCEEDED, output, None, ms)
    by = decision.get("by") or "someone"
    comment = f": {decision['comment']}" if decision.get("comment") else ""
    return Outcome(FAILED, output, {"message": f"denied by {by}{comment}", "retryable": False}, ms)


def approval_todo(run_id: str, workflow: str, task: Task, question: str | None) -> dict[str, Any]:
    """The to-do a pending approval opens (``todo_request`` of its waiting event; the to-do stage opens
    it, and resolves it from the task's ``todo_resolve`` once answered or timed out)."""
    approval_id = f"{run_id}.{task.name}"
    return {
        "key": f"approval:{approval_id}",
        "title": f"approval {approval_id}: {question or task.name}",
        "type": "whale.approval",
        "details": {"approval_id": approval_id, "run_id": run_id, "workflow": workflow, "task": task.name,
                    "question": question, "approvers": task.approvers, "answer": f"whale approvals approve|deny {approval_id}"},
    }  # fmt: skip
