"""People's answers to runs, read from ``whale.events``: approval decisions
(``whale.approval.granted|denied``, subject = run id) and cancel requests
(``whale.run.cancel.requested``, subject = run id), pause and resume requests
(``whale.run.pause.requested|resume.requested``: a paused workflow run starts no new task).

Any executor of the pool may read them (the pool shares one consumer group); it records them on the
state topic under ``<pool>/approval/<run id>/<task>`` or ``<pool>/cancel/<run id>``, where the
executor running the run sees it, whichever partition it owns (first answer wins; answers for runs
of other pools are ignored). The event center's ``/approvals`` and ``/runs`` APIs write these events
with the answerer's identity (``answered_by``) after checking who may answer.
"""

from __future__ import annotations

from typing import Any

import structlog

from whale.consumer import Received
from whale_executor.state import APPROVAL_STATE, CANCEL_STATE, PAUSE_STATE, StateStore

log = structlog.get_logger(__name__)
GRANTED = "whale.approval.granted"
DENIED = "whale.approval.denied"
CANCEL_REQUESTED = "whale.run.cancel.requested"
PAUSE_REQUESTED = "whale.run.pause.requested"
RESUME_REQUESTED = "whale.run.resume.requested"
RUN_CONTROLS = (CANCEL_REQUESTED, PAUSE_REQUESTED, RESUME_REQUESTED)


def _who(data: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The answerer's name and, when the API wrote the event, its identity."""
    identity = data.get("answered_by")
    if isinstance(identity, dict) and isinstance(identity.get("name"), str):
        return identity["name"], identity
    return str(data.get("by", "")), None


class Approvals:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def handle(self, received: Received) -> None:
        event = received.event
        if event.type not in (GRANTED, DENIED, *RUN_CONTROLS) or event.extensions.get("replaymode"):
            return  # a replayed answer (live or dry) answers nothing again
        data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
        run_id = event.subject or data.get("run_id")
        task = data.get("task")
        if not isinstance(run_id, str) or (event.type not in RUN_CONTROLS and not isinstance(task, str)):
            log.warning("answer_ignored", reason="needs subject (run id) and data.task", event_id=event.id)
            return
        run_key = self._store.run_key_of(run_id)
        if run_key is None:
            return  # a run of another pool
        run = self._store.get(run_key) or {}
        if run.get("status") == "finished":
            log.info("answer_too_late", run_id=run_id, task=task, type=event.type)
            return
        by, identity = _who(data)
        common: dict[str, Any] = {"run_id": run_id, "by": by, "answered_by": identity, "event_id": event.id}
        common["comment"] = str(data.get("comment") or "")
        if event.type in (PAUSE_REQUESTED, RESUME_REQUESTED):  # the latest one holds
            record = {"kind": "pause", "paused": event.type == PAUSE_REQUESTED, **common}
            await self._store.put(self._store.pause_key(run_id), record, kind=PAUSE_STATE)
            log.info("answer_recorded", run_id=run_id, type=event.type, by=by)
            return
        if event.type == CANCEL_REQUESTED:
            key, kind, record = self._store.cancel_key(run_id), CANCEL_STATE, {"kind": "cancel", **common}
        else:
            assert isinstance(task, str)
            key, kind = self._store.approval_key(run_id, task), APPROVAL_STATE
            record = {"kind": "approval", "task": task, "approved": event.type == GRANTED, **common}
            record["response"] = data.get("response")
        if self._store.get(key) is not None:
            return
        await self._store.put(key, record, kind=kind)
        log.info("answer_recorded", run_id=run_id, task=task, type=event.type, by=by)
