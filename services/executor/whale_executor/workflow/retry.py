"""Retrying a finished workflow run from its failed tasks (``whale runs retry``).

A retry is a new run (its own request, idempotency key and run id) whose request names the old run
in ``retry_of``. The new run starts with the old run's succeeded tasks as they were recorded
(status, output, attempts; marked ``reused_from``) and schedules only the tasks that failed without
a transition handling it, and those the old run left unfinished (cancelled or cut by the deadline).
The old run's state must be known to the pool (it is, until the retention sweeps it).
"""

from __future__ import annotations

from typing import Any

from whale_executor.errors import RunError
from whale_executor.workflow.model import Workflow

UNFINISHED = ("pending", "running", "waiting", "cancelled")


def carry_over(state: dict[str, Any], old: dict[str, Any] | None, retry_of: str) -> None:
    """Fill the new run's ``state`` from ``old`` (the retried run's record, None when unknown)."""
    state["retry_of"] = retry_of
    if old is None or old.get("kind") != "workflow":
        state["restart"] = {"error": f"run {retry_of!r} is unknown to this pool (or swept)"}
        return
    if old.get("workflow") != state["workflow"]:
        state["restart"] = {"error": f"run {retry_of!r} ran workflow {old.get('workflow')!r}"}
        return
    tasks = old.get("tasks") or {}
    state["input"] = old.get("input", state["input"])
    state["tasks"] = {
        name: {**task, "reused_from": retry_of}
        for name, task in tasks.items()
        if task.get("status") == "succeeded"
    }
    state["joins"] = dict(old.get("joins") or {})
    restart = [f["task"] for f in old.get("failures") or [] if f.get("task")]
    restart += [name for name, task in tasks.items() if task.get("status") in UNFINISHED]
    state["restart"] = {"tasks": list(dict.fromkeys(restart))}


def restart_tasks(state: dict[str, Any], workflow: Workflow) -> list[str]:
    """The tasks a new run starts with: the workflow's start tasks, or a retry's restart list."""
    restart = state.pop("restart", None)
    if restart is None:
        return list(workflow.start)
    if "error" in restart:
        raise RunError(f"cannot retry: {restart['error']}", retryable=False)
    missing = [name for name in restart["tasks"] if name not in workflow.tasks]
    if missing:
        raise RunError(f"cannot retry: the workflow no longer has task {missing[0]!r}", retryable=False)
    return list(restart["tasks"])
