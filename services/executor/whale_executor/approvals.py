"""Approval decisions: ``whale.approval.granted|denied`` on ``whale.events`` (subject = run id).

Any executor of the pool may read the decision (the pool shares one consumer group); it records it
on the state topic under ``<pool>/approval/<run id>/<task>``, where the executor running the
workflow sees it (first decision wins; decisions for runs of other pools are ignored).
"""

from __future__ import annotations

from typing import Any

import structlog

from whale.consumer import Received
from whale_executor.state import APPROVAL_STATE, StateStore

log = structlog.get_logger(__name__)
GRANTED = "whale.approval.granted"
DENIED = "whale.approval.denied"


class Approvals:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def handle(self, received: Received) -> None:
        event = received.event
        if event.type not in (GRANTED, DENIED):
            return
        data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
        run_id = event.subject or data.get("run_id")
        task = data.get("task")
        if not isinstance(run_id, str) or not isinstance(task, str):
            log.warning(
                "approval_ignored", reason="needs subject (run id) and data.task", approval_id=event.id
            )
            return
        run_key = self._store.run_key_of(run_id)
        if run_key is None:
            return  # a run of another pool
        run = self._store.get(run_key) or {}
        if run.get("status") == "finished":
            log.info("approval_too_late", run_id=run_id, task=task)
            return
        key = self._store.approval_key(run_id, task)
        if self._store.get(key) is not None:
            return
        await self._store.put(
            key,
            {
                "kind": "approval",
                "run_id": run_id,
                "task": task,
                "approved": event.type == GRANTED,
                "by": str(data.get("by", "")),
                "comment": str(data.get("comment", "")),
                "event_id": event.id,
            },
            kind=APPROVAL_STATE,
        )
        log.info("approval_recorded", run_id=run_id, task=task, approved=event.type == GRANTED)
