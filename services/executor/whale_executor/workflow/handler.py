"""Workflow requests: start a run, resume an interrupted one, or re-publish a finished one's result."""

from __future__ import annotations

import time

from whale import runs, topics
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale_executor import metrics
from whale_executor.catalog import Catalog
from whale_executor.requests import ActionRequest
from whale_executor.runner import Runner
from whale_executor.state import StateStore
from whale_executor.workflow import retry
from whale_executor.workflow.engine import Run


class Workflows:
    """Answers ``whale.action.requested`` events whose target is a workflow (start or resume)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: StateStore,
        runner: Runner,
        producer: EventProducer,
        pool: str,
        max_items: int = 1000,
        item_output_budget: int = 128 * 1024,
    ) -> None:
        self.catalog = catalog
        self.max_items = max_items  # items a fan-out task may run over
        self.item_output_budget = item_output_budget  # JSON characters of item outputs per fan-out
        self.store = store
        self.runner = runner
        self.producer = producer
        self.pool = pool

    async def handle(self, event: CloudEvent, req: ActionRequest) -> None:
        key = self.store.run_key(req.idempotency_key)
        state = self.store.get(key)
        if state is not None and state.get("status") == "finished":
            metrics.REPLAYED.labels(pool=self.pool).inc()
            await self.producer.send(topics.RESULTS, CloudEvent.from_structured(state["result_event"]))
            return
        workflow = self.catalog.workflows.get(req.target.name)
        run_id = runs.run_id("workflow", key)
        if state is None:
            state = {
                "kind": "workflow",
                "status": "new",
                "run_id": run_id,
                "workflow": req.target.name,
                "request_id": event.id,
                "requested_by": event.source,
                "idempotency_key": req.idempotency_key,
                "target": req.target.model_dump(),
                "rule": req.rule.model_dump() if req.rule else None,
                "input": req.params,
                "started_at": time.time(),
                "tasks": {},
                "scheduled": [],
                "joins": {},
                "failures": [],
            }
            if req.retry_of is not None:
                old_key = self.store.run_key_of(req.retry_of)
                retry.carry_over(state, self.store.get(old_key) if old_key else None, req.retry_of)
        run = Run(self, workflow, event, key, state)
        await run.run()
