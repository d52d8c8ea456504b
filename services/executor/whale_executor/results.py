"""Result events on ``whale.results``: types, data shape, causation from the request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from whale.cloudevent import CloudEvent
from whale.correlation import caused_by, link_extensions
from whale.event_data import data_problem, text_problem
from whale.ids import unique_id
from whale_executor import secrets

SUCCEEDED = "whale.action.succeeded"
FAILED = "whale.action.failed"
TIMED_OUT = "whale.action.timed_out"
ABANDONED = "whale.action.abandoned"
CANCELLED = "whale.action.cancelled"
WORKFLOW_STARTED = "whale.workflow.started"
WORKFLOW_COMPLETED = "whale.workflow.completed"
WORKFLOW_FAILED = "whale.workflow.failed"
WORKFLOW_CANCELLED = "whale.workflow.cancelled"
TASK_PREFIX = "whale.workflow.task."
TASK_STATES = ("started", "waiting", "succeeded", "failed", "timed_out", "abandoned")
ACTION_TYPES = (SUCCEEDED, FAILED, TIMED_OUT, ABANDONED, CANCELLED)
WORKFLOW_TYPES = (
    WORKFLOW_STARTED,
    WORKFLOW_COMPLETED,
    WORKFLOW_FAILED,
    WORKFLOW_CANCELLED,
    *(TASK_PREFIX + s for s in TASK_STATES),
)
STATUS_OF = {
    SUCCEEDED: "succeeded",
    FAILED: "failed",
    TIMED_OUT: "timed_out",
    ABANDONED: "abandoned",
    CANCELLED: "cancelled",
}


def source_of(pool: str) -> str:
    return f"/whale/executor/{pool}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one action run ended."""

    type: str
    output: Any = None
    error: dict[str, Any] | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.type == SUCCEEDED

    @property
    def status(self) -> str:
        return STATUS_OF[self.type]


def result_event(
    request: CloudEvent,
    *,
    type: str,
    pool: str,
    request_id: str,
    idempotency_key: str,
    target: dict[str, Any],
    output: Any = None,
    error: dict[str, Any] | None = None,
    duration_ms: int = 0,
    subject: str | None = None,
    **extra: Any,
) -> CloudEvent:
    """A result caused by ``request`` (causation/correlation/trace extensions carried over)."""
    data = {
        "request_id": request_id,
        "idempotency_key": idempotency_key,
        "target": target,
        "pool": pool,
        "output": secrets.scrub_value(output),
        "error": secrets.scrub_value(error),
        "duration_ms": duration_ms,
        **extra,
    }
    subject = subject or idempotency_key
    if subject and text_problem(subject) is None and data_problem(data) is None:
        # what the model's validation would check of a result (its other attributes are ours, and
        # the extensions are the validated request's), without building it twice
        return CloudEvent.model_construct(
            id=unique_id(),
            source=source_of(pool),
            type=type,
            datacontenttype="application/json",
            subject=subject,
            time=datetime.now(UTC),
            data=data,
            extensions=link_extensions(request),
        )
    return caused_by(request, type=type, source=source_of(pool), data=data, subject=subject)


def abandoned(what: str, action: str, attempt: int) -> Outcome:
    """An interrupted run of a non-idempotent action is not run again (``what``: the task or item)."""
    reason = (
        f"the executor stopped while {what} ({action}) was running (attempt "
        f"{attempt}); {action} is not idempotent, so it was not run again"
    )
    return Outcome(ABANDONED, None, {"message": reason, "retryable": False})
