"""Running one action, and answering one action request effectively once.

The state record of a request goes ``started`` (before the run) then ``finished`` (with the result
event, before that event is published). A redelivered request whose state is ``finished`` gets the
recorded result again (same event id); one found ``started`` was interrupted by a crash: it runs
again when the action is idempotent, else it ends as ``whale.action.abandoned``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import structlog

from whale import topics
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.runs import run_id
from whale_executor import metrics
from whale_executor.actions.base import Action, ActionContext
from whale_executor.catalog import Catalog
from whale_executor.errors import RunError
from whale_executor.requests import ActionRequest
from whale_executor.results import (
    ABANDONED,
    CANCELLED,
    FAILED,
    SUCCEEDED,
    TIMED_OUT,
    Outcome,
    result_event,
)
from whale_executor.state import StateStore

log = structlog.get_logger(__name__)
GRACE = 2.0  # seconds beyond an action's own timeout before the executor cancels it


class Runner:
    """Validates params and runs actions under a concurrency bound."""

    def __init__(self, *, pool: str, concurrency: int) -> None:
        self.pool = pool
        self._slots = asyncio.Semaphore(concurrency)

    async def execute(
        self, action: Action, params: Any, ctx: ActionContext, *, timeout: float | None = None
    ) -> Outcome:
        """Run ``action`` once; every ending (including a bug in the action) becomes an Outcome."""
        started = time.monotonic()
        try:
            valid = action.validate(params)
        except RunError as exc:
            return Outcome(FAILED, exc.output, exc.as_error(), 0)
        limit = timeout if timeout is not None else action.timeout + GRACE
        async with self._slots:
            try:
                output = await asyncio.wait_for(action.run(valid, ctx), timeout=limit)
                outcome = Outcome(SUCCEEDED, output, None, _ms(started))
            except TimeoutError:
                error = {"message": f"{action.name} did not finish within {limit:g}s", "retryable": True}
                outcome = Outcome(TIMED_OUT, None, error, _ms(started))
            except RunError as exc:
                outcome = Outcome(exc.result_type, exc.output, exc.as_error(), _ms(started))
            except Exception as exc:  # a bug in an action must not take the executor down
                log.exception("action_crashed", action=action.name)
                error = {"message": f"{type(exc).__name__}: {exc}", "retryable": False}
                outcome = Outcome(FAILED, None, error, _ms(started))
        metrics.RUNS.labels(pool=self.pool, action=action.name, result=outcome.status).inc()
        metrics.RUN_SECONDS.labels(pool=self.pool, kind=action.kind).observe(time.monotonic() - started)
        return outcome


class ActionRequests:
    """Answers ``whale.action.requested`` events whose target is an action."""

    def __init__(
        self, *, catalog: Catalog, store: StateStore, runner: Runner, producer: EventProducer, pool: str
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._runner = runner
        self._producer = producer
        self._pool = pool

    async def handle(self, event: CloudEvent, req: ActionRequest) -> None:
        target = req.target.model_dump()
        key = self._store.run_key(req.idempotency_key)
        state = self._store.get(key)
        if state is not None and state.get("status") == "finished":
            await self.republish(state)
            return
        action = self._catalog.actions.get(req.target.name)
        common: dict[str, Any] = {
            "pool": self._pool,
            "request_id": event.id,
            "idempotency_key": req.idempotency_key,
            "target": target,
        }
        if req.rule is not None:
            common["rule"] = req.rule.model_dump()
        if action is None:
            error = {
                "message": f"pool {self._pool!r} has no action {req.target.name!r}",
                "retryable": False,
                "problems": [{"field": "data.target.name", "message": "unknown action"}],
            }
            await self._finish(key, event, Outcome(FAILED, None, error), common, attempt=0)
            return
        attempt = 1
        if state is not None and state.get("status") == "started":
            attempt = int(state.get("attempt", 1))
            if not action.idempotent:
                reason = (
                    f"the executor stopped while {action.name} was running (attempt {attempt}, started "
                    f"{state.get('started_at')}); {action.name} is not idempotent, so it was not run again"
                )
                await self._finish(
                    key,
                    event,
                    Outcome(ABANDONED, None, {"message": reason, "retryable": False}),
                    common,
                    attempt,
                )
                return
            attempt += 1
            log.info("retrying_interrupted_run", action=action.name, attempt=attempt)
        this_run = run_id("action", key)
        base: dict[str, Any] = {
            "kind": "action",
            "run_id": this_run,
            "request_id": event.id,
            "idempotency_key": req.idempotency_key,
            "target": target,
            "input": req.params,
        }
        await self._store.put(
            key, {**base, "status": "started", "attempt": attempt, "started_at": now_text()}
        )
        ctx = ActionContext(
            request_id=event.id, idempotency_key=req.idempotency_key, pool=self._pool, attempt=attempt
        )
        outcome = await self._cancellable(this_run, self._runner.execute(action, req.params, ctx))
        await self._finish(key, event, outcome, common, attempt, this_run)

    async def _cancellable(self, run_id: str, running: Awaitable[Outcome]) -> Outcome:
        """``running``'s outcome, unless someone cancels the run first (its process is killed).
        The cancel record is watched with a callback, not a task of its own per request."""
        key = self._store.cancel_key(run_id)
        work = asyncio.ensure_future(running)
        tripped = False

        def trip() -> None:
            nonlocal tripped
            if not work.done():
                tripped = True
                work.cancel()

        with self._store.watching(key, trip):
            if self._store.get(key) is not None:  # cancelled before it started
                trip()
            try:
                return await work
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not tripped or (current is not None and current.cancelling()):
                    raise  # this request itself is cancelled (a revoke, a stop)
        cancel = self._store.get(key) or {}
        comment = f": {cancel['comment']}" if cancel.get("comment") else ""
        error = {"message": f"cancelled by {cancel.get('by') or 'someone'}{comment}", "retryable": False}
        return Outcome(CANCELLED, None, error)

    async def _finish(
        self,
        key: str,
        event: CloudEvent,
        outcome: Outcome,
        common: dict[str, Any],
        attempt: int,
        this_run: str | None = None,
    ) -> None:
        result = result_event(
            event,
            type=outcome.type,
            output=outcome.output,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            attempt=attempt,
            **common,
        )
        await self._store.put(
            key,
            {
                "kind": "action",
                "run_id": this_run or run_id("action", key),
                "request_id": common["request_id"],
                "idempotency_key": common["idempotency_key"],
                "target": common["target"],
                "status": "finished",
                "attempt": attempt,
                "finished_at": now_text(),
                "result_event": result.to_structured(),
            },
        )
        await self._producer.send(topics.RESULTS, result)

    async def republish(self, state: dict[str, Any]) -> None:
        """Publish the recorded result again (same event id: consumers see a duplicate, not a new run)."""
        metrics.REPLAYED.labels(pool=self._pool).inc()
        await self._producer.send(topics.RESULTS, CloudEvent.from_structured(state["result_event"]))


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
