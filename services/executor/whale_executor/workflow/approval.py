"""Approval tasks of a workflow run: recorded as waiting (with the rendered message and deadline),
then decided (granted or denied, as the executor's state store records it) or timed out at the deadline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from whale.rules import templating
from whale_executor.results import FAILED, SUCCEEDED, TASK_PREFIX, TIMED_OUT, Outcome
from whale_executor.runner import now_text
from whale_executor.workflow.model import Task

if TYPE_CHECKING:
    from whale_executor.workflow.engine import Run


async def decide(run: Run, task: Task, previous: dict[str, Any] | None) -> Outcome:
    """Wait for the decision on an approval task (recording it as waiting first, unless it already
    was before a restart) until its deadline: granted, denied or timed out."""
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
            }
            await run._save(
                run._event(
                    TASK_PREFIX + "waiting",
                    task=task.name,
                    output={"message": message, "deadline": deadline},
                )
            )
    remaining = None if deadline is None else max(0.0, deadline - time.time())
    decision = await run.o.store.wait(run.o.store.approval_key(run.run_id, task.name), remaining)
    ms = round((time.monotonic() - started) * 1000)
    if decision is None:
        error = {"message": f"no approval within {task.timeout:g}s", "retryable": False}
        return Outcome(TIMED_OUT, None, error, ms)
    output = {k: decision.get(k) for k in ("approved", "by", "comment")}
    if decision.get("approved"):
        return Outcome(SUCCEEDED, output, None, ms)
    by = decision.get("by") or "someone"
    comment = f": {decision['comment']}" if decision.get("comment") else ""
    return Outcome(FAILED, output, {"message": f"denied by {by}{comment}", "retryable": False}, ms)
