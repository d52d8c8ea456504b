"""Workflow runs, event-sourced on ``whale.executor.state``.

Every transition (task pending, running, waiting, finished; run finished) is written as the run's
whole state before the matching ``whale.workflow.*`` event is published. A restarted executor loads
that state and resumes: finished tasks are never run again, ``pending`` tasks start, a ``running``
task (interrupted by the crash) runs again only when its action is idempotent, else it is
``abandoned`` (a failure its transitions can handle), and an approval keeps waiting until its deadline.
A fan-out task (``with_items``, see :mod:`~whale_executor.workflow.fanout`) records each item the same way;
an approval task is :mod:`~whale_executor.workflow.approval`, a workflow task (a child run recorded in
the parent's state) :mod:`~whale_executor.workflow.subflow`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from whale import topics
from whale.cloudevent import CloudEvent
from whale.rules import templating
from whale_executor import metrics
from whale_executor.actions.base import Action, ActionContext
from whale_executor.errors import RunError
from whale_executor.results import (
    FAILED,
    TASK_PREFIX,
    WORKFLOW_CANCELLED,
    WORKFLOW_COMPLETED,
    WORKFLOW_FAILED,
    WORKFLOW_STARTED,
    Outcome,
    abandoned,
    result_event,
)
from whale_executor.runner import now_text
from whale_executor.workflow import approval, fanout, retry
from whale_executor.workflow.model import Task, Workflow

if TYPE_CHECKING:
    from whale_executor.workflow.handler import Workflows

log = structlog.get_logger(__name__)


class Run:
    """One workflow run (new or resumed)."""

    def __init__(
        self,
        owner: Workflows,
        workflow: Workflow | None,
        request: CloudEvent,
        key: str,
        state: dict[str, Any],
    ) -> None:
        self.o = owner
        self.wf = workflow
        self.request = request
        self.key = key
        self.state = state
        self.run_id: str = state["run_id"]
        self.control_id = self.run_id  # whose cancel and pause keys apply (a child run: its parent's)
        self._lock = asyncio.Lock()
        self._resume: dict[str, dict[str, Any]] = {}
        self._drove = False

    # ------------------------------------------------------------------ events and state
    def _event(
        self, type: str, *, output: Any = None, error: Any = None, duration_ms: int = 0, **extra: Any
    ) -> CloudEvent:
        s = self.state
        return result_event(
            self.request,
            type=type,
            pool=self.o.pool,
            request_id=s["request_id"],
            idempotency_key=s["idempotency_key"],
            target=s["target"],
            output=output,
            error=error,
            duration_ms=duration_ms,
            subject=self.run_id,
            run_id=self.run_id,
            workflow=s["workflow"],
            **extra,
        )

    async def _save(self, event: CloudEvent | None = None) -> None:
        """Record the state, then publish ``event`` (the caller holds the lock).

        The event is recorded with the state (``outbox``), so an executor that dies between the two
        writes publishes it again, with the same id, when it resumes the run."""
        if event is not None:
            self.state["outbox"] = event.to_structured()
        record = await self.o.store.put(self.key, self.state)
        self.state["seq"] = record["seq"]  # keep mutating our own dict: the driver shares it
        if event is not None:
            await self.o.producer.send(topics.RESULTS, event)

    async def save_nested(self) -> None:
        """Record the state after a step of a child run nested in it (see subflow.py)."""
        async with self._lock:
            await self._save()

    def context(self, result: dict[str, Any] | None = None) -> dict[str, Any]:
        tasks = {
            name: {"status": t.get("status"), "output": t.get("output"), "error": t.get("error")}
            for name, t in self.state["tasks"].items()
        }
        ctx: dict[str, Any] = {"input": self.state["input"], "run_id": self.run_id, "tasks": tasks}
        if result is not None:
            ctx["result"] = result
        return ctx

    # ------------------------------------------------------------------ the run
    async def run(self) -> None:
        if self.wf is None:
            await self._end(
                FAILED,
                error={
                    "message": f"pool {self.o.pool!r} has no workflow {self.state['workflow']!r}",
                    "retryable": False,
                },
            )
            return
        if self.state["status"] == "new":
            try:
                self.state["input"] = self.wf.params.validate(self.state["input"])
                first = retry.restart_tasks(self.state, self.wf)
            except RunError as exc:
                await self._end(FAILED, error=exc.as_error())
                return
            self.state["status"] = "running"
            self.state["deadline"] = time.time() + self.wf.timeout if self.wf.timeout else None
            for name in first:
                self._schedule(name)
            async with self._lock:
                await self._save(self._event(WORKFLOW_STARTED, output={"input": self.state["input"]}))
        else:
            self._recover()
            outbox = self.state.get("outbox")
            if outbox:  # the last transition may not have been published before the crash
                await self.o.producer.send(topics.RESULTS, CloudEvent.from_structured(outbox))
        deadline = self.state.get("deadline")
        remaining = None if deadline is None else max(0.0, deadline - time.time())
        cancel = await self._drive_until(remaining)
        if cancel is not None or not self._drove:  # cancelled, or the deadline passed
            async with self._lock:
                for task in self.state["tasks"].values():
                    if task.get("status") in ("pending", "running", "waiting"):
                        task["status"] = "cancelled"
                self.state["scheduled"] = []
                if cancel is None:
                    self.state["failures"].append(
                        {
                            "task": None,
                            "error": {
                                "message": f"workflow timed out after {self.wf.timeout:g}s",
                                "retryable": True,
                            },
                        }
                    )
        if cancel is not None:
            by = cancel.get("by") or "someone"
            comment = f": {cancel['comment']}" if cancel.get("comment") else ""
            error = {"message": f"cancelled by {by}{comment}", "retryable": False}
            await self._end(WORKFLOW_CANCELLED, error=error, cancelled_by=cancel.get("answered_by") or by)
            return
        await self._finish()

    async def _drive_until(self, remaining: float | None) -> dict[str, Any] | None:
        """Drive the run until it ends, its deadline passes (``_drove`` stays False) or someone cancels
        it (the cancel record is returned); running tasks are cancelled (processes killed)."""
        self._drove = False
        drive = asyncio.create_task(self._drive())
        cancel_key = self.o.store.cancel_key(self.control_id)
        watch = asyncio.create_task(self.o.store.wait(cancel_key, None))
        try:
            done, _ = await asyncio.wait(
                {drive, watch}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (drive, watch):
                task.cancel()
            for task in (drive, watch):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if drive in done:
            self._drove = True
            drive.result()
            return None
        if watch in done:
            log.info("workflow_cancelled", run_id=self.run_id)
            return watch.result()
        return None

    def _recover(self) -> None:
        log.info("workflow_resumed", run_id=self.run_id, workflow=self.state["workflow"])
        for name, task in self.state["tasks"].items():
            if task.get("status") == "pending" and name not in self.state["scheduled"]:
                self.state["scheduled"].append(name)
            elif task.get("status") in ("running", "waiting"):
                self._resume[name] = dict(task)

    def _schedule(self, name: str) -> None:
        if name not in self.state["scheduled"]:
            self.state["scheduled"].append(name)
        self.state["tasks"][name] = {"status": "pending"}

    async def _drive(self) -> None:
        running: dict[str, asyncio.Task[None]] = {}
        try:
            for name, previous in self._resume.items():
                running[name] = asyncio.create_task(self._task(name, previous))
            self._resume = {}
            pause_key = self.o.store.pause_key(self.control_id)
            while True:
                pause = self.o.store.get(pause_key) or {}
                if not pause.get("paused"):  # a paused run starts no new task (running ones finish)
                    for name in list(self.state["scheduled"]):
                        if name not in running:
                            self.state["scheduled"].remove(name)
                            running[name] = asyncio.create_task(self._task(name, None))
                if not running and not (pause.get("paused") and self.state["scheduled"]):
                    return
                change = asyncio.create_task(self.o.store.changed(pause_key, int(pause.get("seq", 0))))
                try:
                    done, _ = await asyncio.wait(
                        [*running.values(), change], return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    change.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await change
                for name in [n for n, t in running.items() if t in done]:
                    running.pop(name).result()
        finally:
            for task in running.values():
                task.cancel()
            for task in running.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _task(self, name: str, previous: dict[str, Any] | None) -> None:
        assert self.wf is not None
        task = self.wf.tasks[name]
        if task.type == "approval":
            outcome, attempt = await approval.wait_approval(self, task, previous), 1
        elif task.fanout is not None:
            outcome, attempt = await fanout.run_items(self, task, previous), 1
        elif task.workflow is not None:
            from whale_executor.workflow import subflow  # subflow's ChildRun subclasses Run

            outcome, attempt = await subflow.run_child(self, task, previous), 1
        else:
            outcome, attempt = await self._action(task, previous)
        await self._complete(task, outcome, attempt)

    def _action_of(self, task: Task) -> Action | Outcome:
        """The task's action, or the failure to report when the catalogue lost it."""
        assert task.action is not None
        action = self.o.catalog.actions.get(task.action)
        if action is None:  # the catalogue changed between a crash and the restart
            error = {"message": f"action {task.action!r} is no longer in the catalogue", "retryable": False}
            return Outcome(FAILED, None, error)
        return action

    async def _action(self, task: Task, previous: dict[str, Any] | None) -> tuple[Outcome, int]:
        action = self._action_of(task)
        if isinstance(action, Outcome):
            return action, 1
        attempt = 1
        if previous is not None:
            attempt = int(previous.get("attempt", 1))
            if not action.idempotent:
                return abandoned(f"task {task.name!r}", action.name, attempt), attempt
            attempt += 1
        try:
            params = templating.render_value(task.input, self.context(), path="input")
        except templating.TemplateError as exc:
            return Outcome(
                FAILED, None, {"message": f"task {task.name!r}: {exc.message}", "retryable": False}
            ), attempt

        async def started(attempt: int) -> None:
            async with self._lock:
                self.state["tasks"][task.name] = {
                    "status": "running",
                    "attempt": attempt,
                    "started_at": now_text(),
                }
                await self._save(
                    self._event(
                        TASK_PREFIX + "started",
                        task=task.name,
                        attempt=attempt,
                        output={"action": action.name},
                    )
                )

        return await self._attempts(task, action, params, attempt, started)

    async def _attempts(
        self,
        task: Task,
        action: Action,
        params: Any,
        attempt: int,
        started: Callable[[int], Awaitable[None]],
        item: int | None = None,
    ) -> tuple[Outcome, int]:
        """Run ``action`` from ``attempt`` on under the task's retry policy; ``started`` records each
        attempt before it runs. A fan-out item (``item``: its index) has its own idempotency key."""
        key = f"{self.state['idempotency_key']}/{task.name}" + ("" if item is None else f"/{item}")
        while True:
            await started(attempt)
            ctx = ActionContext(
                request_id=self.state["request_id"],
                idempotency_key=key,
                pool=self.o.pool,
                attempt=attempt,
                run_id=self.run_id,
                task=task.name,
                extra={} if item is None else {"item_index": item},
            )
            outcome = await self.o.runner.execute(action, params, ctx, timeout=task.timeout)
            invalid = bool(outcome.error and outcome.error.get("problems"))
            if outcome.ok or invalid or attempt > task.retry.count:
                return outcome, attempt
            await asyncio.sleep(task.retry.wait(attempt))
            attempt += 1

    async def _complete(self, task: Task, outcome: Outcome, attempt: int) -> None:
        word = "success" if outcome.ok else "failure"
        async with self._lock:
            record = {
                "status": outcome.status,
                "attempt": attempt,
                "output": outcome.output,
                "error": outcome.error,
                "duration_ms": outcome.duration_ms,
                "finished_at": now_text(),
            }
            child = self.state["tasks"].get(task.name, {}).get("child")
            if child is not None:  # a workflow task keeps its child run's state (subflow.py)
                record["child"] = child
            self.state["tasks"][task.name] = record
            result = {"status": outcome.status, "output": outcome.output, "error": outcome.error}
            handled = False
            for i, tr in enumerate(task.next):
                if not tr.matches(word):
                    continue
                if tr.when is not None:
                    try:
                        ok = bool(templating.render_value(tr.when, self.context(result)))
                    except templating.TemplateError as exc:
                        self.state["failures"].append(
                            {
                                "task": task.name,
                                "error": {"message": f"next[{i}].when: {exc.message}", "retryable": False},
                            }
                        )
                        continue
                    if not ok:
                        continue
                handled = True
                for target in tr.do:
                    self._trigger(target, task.name)
            if word == "failure" and not handled:
                failure = {"task": task.name, "error": outcome.error}
                if task.fanout is not None:  # the per-item results reach the workflow's result event
                    failure["output"] = outcome.output
                self.state["failures"].append(failure)
            event = self._event(
                TASK_PREFIX + outcome.status,
                task=task.name,
                attempt=attempt,
                output=outcome.output,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
            await self._save(event)

    def _trigger(self, target: str, source: str) -> None:
        assert self.wf is not None
        join = self.wf.tasks[target].join
        if join is None:
            self._schedule(target)
            return
        arrived = self.state["joins"].setdefault(target, [])
        if source not in arrived:
            arrived.append(source)
        if len(arrived) >= join:
            del self.state["joins"][target]
            self._schedule(target)

    async def _finish(self) -> None:
        failures = self.state["failures"]
        output = None
        error = None
        if not failures and self.wf is not None:
            try:
                output = templating.render_value(self.wf.output, self.context(), path="output")
            except templating.TemplateError as exc:
                error = {"message": exc.message, "retryable": False}
        if failures:
            first = failures[0]
            where = f"task {first['task']!r} failed: " if first.get("task") else ""
            message = where + str((first.get("error") or {}).get("message", "failed"))
            error = {
                "message": message,
                "retryable": bool((first.get("error") or {}).get("retryable")),
                "failures": failures,
            }
        await self._end(WORKFLOW_FAILED if error else WORKFLOW_COMPLETED, output=output, error=error)

    async def _end(self, type: str, *, output: Any = None, error: Any = None, **extra: Any) -> None:
        if type == FAILED:
            type = WORKFLOW_FAILED
        started = float(self.state.get("started_at", time.time()))
        tasks = {name: t.get("status") for name, t in self.state["tasks"].items()}
        event = self._event(
            type,
            output=output,
            error=error,
            duration_ms=round((time.time() - started) * 1000),
            tasks=tasks,
            **extra,
        )
        self.state["status"] = "finished"
        self.state["result_event"] = event.to_structured()
        metrics.WORKFLOWS.labels(
            pool=self.o.pool, workflow=self.state["workflow"], result=type.rsplit(".", 1)[-1]
        ).inc()
        async with self._lock:
            await self._save(event)
