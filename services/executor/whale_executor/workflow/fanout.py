"""Fan-out: a workflow task that runs its action once per item of a list (``with_items``) or once
per inventory host of a selector (``with_hosts``).

.. code-block:: yaml

    restart:
      action: host.restart-unit
      with_items: "{{ input.hosts }}"     # a template rendering to a list, or a YAML list; or:
      # with_hosts: {group: web, labels: {env: "{{ input.env }}"}}   # items = matching host names
      input: {host: "{{ item }}", unit: nginx}
      concurrency: 2                      # items running at once (default: all)
      stop_after_failures: 2              # and/or max_failure_percent: 50

Items start in list order, at most ``concurrency`` at a time. Once the failures cross the threshold
(:meth:`~whale_executor.workflow.model.FanOut.crossed`), no further item starts; items already running
finish, and those never started are ``skipped``. The task's output lists every item in order
(``item``, ``status``, ``output``, ``error``) with counts; the task fails when the threshold was crossed.
Retries and the task timeout apply to each item. Each item's output and error are kept up to its
share of ``ITEMS_OUTPUT_BUDGET`` characters of JSON (the run's state is one Kafka record), the rest cut.

Crash safety: the rendered list and each item's state are recorded in the run's state (the task's
``values`` and ``items``), every item's start and end written before the next step. A resumed run keeps
finished items, starts pending ones, runs an interrupted item again only when the action is idempotent
(else the item is ``abandoned``, a failure), and never renders the list again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from whale.inventory import Selector, UnknownHost
from whale.rules import templating
from whale_executor.actions.base import Action
from whale_executor.results import FAILED, SUCCEEDED, TASK_PREFIX, Outcome, abandoned
from whale_executor.runner import now_text
from whale_executor.workflow.model import FanOut, Task

if TYPE_CHECKING:
    from whale_executor.workflow.engine import Run

FAILURES = frozenset({"failed", "timed_out", "abandoned"})
SKIPPED = "skipped"
MIN_ITEM_OUTPUT = 256  # characters of JSON an item's output keeps however many items there are


async def run_items(run: Run, task: Task, previous: dict[str, Any] | None) -> Outcome:
    """Run ``task``'s action over its items (new, or resumed from ``previous``)."""
    assert task.fanout is not None
    action = run._action_of(task)
    if isinstance(action, Outcome):
        return action
    started = time.monotonic()
    if previous is None or "items" not in previous:
        failed = await _begin(run, task, action)
        if failed is not None:
            return failed
    record = run.state["tasks"][task.name]
    todo = await _resume_items(run, task, action, record) if previous is not None else None
    if todo is None:
        todo = [(i, 1) for i, it in enumerate(record["items"]) if it["status"] == "pending"]
    await _drive(run, task, action, record, todo)
    return _outcome(task, task.fanout, record, round((time.monotonic() - started) * 1000))


async def _begin(run: Run, task: Task, action: Action) -> Outcome | None:
    """Render the list, check its size, record it; an Outcome when the task cannot start."""
    assert task.fanout is not None
    name = task.name
    if task.fanout.hosts is not None:
        hosts = _hosts(run, task, task.fanout.hosts)
        if isinstance(hosts, Outcome):
            return hosts
        values: Any = hosts
    else:
        try:
            values = templating.render_value(task.fanout.items, run.context(), path="with_items")
        except templating.TemplateError as exc:
            return Outcome(FAILED, None, {"message": f"task {name!r}: {exc.message}", "retryable": False})
    if not isinstance(values, list):
        kind = type(values).__name__
        message = f"task {name!r}: with_items rendered to a {kind}, not a list"
        return Outcome(FAILED, None, {"message": message, "retryable": False})
    limit = run.o.max_items
    if len(values) > limit:
        message = (
            f"task {name!r}: with_items has {len(values)} items, more than the {limit} allowed"
            " (WHALE_EXECUTOR_MAX_ITEMS); nothing was run"
        )
        return Outcome(FAILED, None, {"message": message, "retryable": False})
    async with run._lock:
        run.state["tasks"][name] = {
            "status": "running",
            "attempt": 1,
            "started_at": now_text(),
            "values": values,
            "items": [{"status": "pending"} for _ in values],
        }
        output = {"action": action.name, "items": len(values)}
        await run._save(run._event(TASK_PREFIX + "started", task=name, attempt=1, output=output))
    return None


def _hosts(run: Run, task: Task, selector: dict[str, Any]) -> list[str] | Outcome:
    """The names of the inventory hosts ``selector`` (rendered) matches, in name order; an Outcome
    (not retryable) when it is malformed, there is no inventory, or it matches no host."""

    def failed(message: str) -> Outcome:
        return Outcome(
            FAILED, None, {"message": f"task {task.name!r}: with_hosts: {message}", "retryable": False}
        )

    try:
        rendered = templating.render_value(selector, run.context(), path="with_hosts")
        chosen = Selector.model_validate(rendered)
    except templating.TemplateError as exc:
        return failed(exc.message)
    except ValidationError as exc:
        problem = exc.errors()[0]
        return failed(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}")
    if run.o.inventory is None:
        return failed("this executor has no inventory (WHALE_EXECUTOR_INVENTORY)")
    try:
        return [host.name for host in run.o.inventory.select(chosen)]
    except UnknownHost as exc:
        return failed(exc.message)


async def _resume_items(
    run: Run, task: Task, action: Action, record: dict[str, Any]
) -> list[tuple[int, int]]:
    """Items to run after a restart: interrupted ones first (idempotent: next attempt; else abandoned),
    then pending ones in order. Nothing new starts when the threshold was already crossed."""
    assert task.fanout is not None
    items: list[dict[str, Any]] = record["items"]
    again: list[tuple[int, int]] = []
    changed = False
    for i, it in enumerate(items):
        if it["status"] != "running":
            continue
        attempt = int(it.get("attempt", 1))
        if action.idempotent:
            again.append((i, attempt + 1))
            continue
        outcome = abandoned(f"item {i} of task {task.name!r}", action.name, attempt)
        items[i] = _item_record(outcome, attempt, item_limit(run.o.item_output_budget, len(items)))
        changed = True
    if changed:
        async with run._lock:
            await run._save()
    if _crossed(task.fanout, items):
        return again
    return again + [(i, 1) for i, it in enumerate(items) if it["status"] == "pending"]


async def _drive(
    run: Run, task: Task, action: Action, record: dict[str, Any], todo: list[tuple[int, int]]
) -> None:
    """Start items in order under the concurrency limit until the threshold is crossed."""
    assert task.fanout is not None
    spec = task.fanout
    items: list[dict[str, Any]] = record["items"]
    values: list[Any] = record["values"]
    queue = deque(todo)
    limit = spec.concurrency or max(1, len(queue))
    kept = item_limit(run.o.item_output_budget, len(items))
    running: set[asyncio.Task[None]] = set()

    async def one(index: int, attempt: int) -> None:
        async def started(attempt: int) -> None:
            async with run._lock:
                items[index] = {"status": "running", "attempt": attempt, "started_at": now_text()}
                await run._save()

        try:
            params = templating.render_value(
                task.input, {**run.context(), "item": values[index]}, path="input"
            )
        except templating.TemplateError as exc:
            error = {"message": f"task {task.name!r} item {index}: {exc.message}", "retryable": False}
            outcome = Outcome(FAILED, None, error)
        else:
            outcome, attempt = await run._attempts(task, action, params, attempt, started, item=index)
        async with run._lock:
            items[index] = _item_record(outcome, attempt, kept)
            await run._save()

    try:
        while queue or running:
            while queue and len(running) < limit and not _crossed(spec, items):
                running.add(asyncio.create_task(one(*queue.popleft())))
            if not running:
                break
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()
    finally:  # cancelled (the executor stops, the workflow timed out): items stop where they are
        for pending in running:
            pending.cancel()
        for pending in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


def _item_record(outcome: Outcome, attempt: int, limit: int) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "attempt": attempt,
        "output": _bounded(outcome.output, limit),
        "error": _bounded(outcome.error, limit),
        "duration_ms": outcome.duration_ms,
    }


def _bounded(value: Any, limit: int) -> Any:
    """``value``, or when its JSON is longer than ``limit`` characters the start of that JSON as
    ``{"truncated": true, "json": ...}`` (an error keeps its ``message`` and ``retryable``)."""
    if value is None:
        return None
    text = json.dumps(value, default=str)
    if len(text) <= limit:
        return value
    cut: dict[str, Any] = {"truncated": True, "json": text[:limit]}
    if isinstance(value, dict) and isinstance(value.get("message"), str):  # an error object
        cut = {"message": value["message"][:limit], "retryable": bool(value.get("retryable")), **cut}
    return cut


def item_limit(budget: int, count: int) -> int:
    """Characters of JSON kept of each item's output (and error): the fan-out's share of ``budget``."""
    return max(MIN_ITEM_OUTPUT, budget // max(1, count))


def _crossed(spec: FanOut, items: list[dict[str, Any]]) -> bool:
    return spec.crossed(sum(it["status"] in FAILURES for it in items), len(items))


def _outcome(task: Task, spec: FanOut, record: dict[str, Any], ms: int) -> Outcome:
    """The task's outcome: per-item results in order, counts, and failure when the threshold was crossed."""
    results = []
    for value, it in zip(record["values"], record["items"], strict=True):
        status = SKIPPED if it["status"] == "pending" else it["status"]
        results.append(
            {"item": value, "status": status, "output": it.get("output"), "error": it.get("error")}
        )
    count = {s: sum(r["status"] == s for r in results) for s in ("succeeded", SKIPPED)}
    failed = sum(r["status"] in FAILURES for r in results)
    output = {
        "items": results,
        "total": len(results),
        "succeeded": count["succeeded"],
        "failed": failed,
        "skipped": count[SKIPPED],
    }
    if not spec.crossed(failed, len(results)):
        return Outcome(SUCCEEDED, output, None, ms)
    message = f"task {task.name!r}: {failed} of {len(results)} items failed ({_threshold(spec)})"
    if count[SKIPPED]:
        message += f"; {count[SKIPPED]} not started"
    return Outcome(FAILED, output, {"message": message, "retryable": False}, ms)


def _threshold(spec: FanOut) -> str:
    parts = []
    if spec.stop_after_failures is not None:
        parts.append(f"stop_after_failures {spec.stop_after_failures}")
    if spec.max_failure_percent is not None:
        parts.append(f"max_failure_percent {spec.max_failure_percent:g}")
    return ", ".join(parts) or "any failure fails the task"
