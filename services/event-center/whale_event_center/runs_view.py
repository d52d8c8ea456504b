"""Workflow and action runs, and the approvals they wait for, as the ``/runs`` and ``/approvals``
APIs show them: read from the compacted ``whale.executor.state`` topic (every pool's executors
record each run's whole state there before publishing its events, so the view is the current state
of every run the retention keeps, and the answers people give are there too).

Shapes (every time is RFC 3339 UTC or null):

* run summary: ``{"run_id", "kind": "workflow"|"action", "name", "pool", "state", "started_at",
  "finished_at", "rule", "retry_of"}``; ``state`` is ``running``, ``waiting`` (an approval is
  pending), ``paused`` (starts no new task), ``succeeded``, ``failed``, ``timed_out``, ``abandoned`` or ``cancelled``;
* run detail: the summary plus ``"request_id", "requested_by", "idempotency_key", "input",
  "output", "error", "tasks": {name: {"status", "attempt", "started_at", "finished_at",
  "duration_ms", "output", "error", "reused_from"}}`` (secrets were redacted when recorded);
* approval: ``{"id": "<run id>.<task>", "run_id", "workflow", "pool", "task", "question",
  "requester": {"rule", "request_id", "source"}, "since", "deadline", "approvers": {"role",
  "people"}|null, "response_schema"|null, "status": "pending"|"approved"|"denied"|"closed",
  "answer": {"by", "answered_by", "comment", "response"}|null}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FINISHED_STATE = {
    "whale.workflow.completed": "succeeded",
    "whale.workflow.failed": "failed",
    "whale.workflow.cancelled": "cancelled",
    "whale.action.succeeded": "succeeded",
    "whale.action.failed": "failed",
    "whale.action.timed_out": "timed_out",
    "whale.action.abandoned": "abandoned",
    "whale.action.cancelled": "cancelled",
}
TASK_FIELDS = ("status", "attempt", "started_at", "finished_at", "duration_ms", "output", "error")
ACTIVE = ("running", "waiting", "paused")
RUN_KINDS = ("workflow", "action")  # records of runs (indexed by run id)
ANSWER_KINDS = ("approval", "cancel", "pause")  # records about a run, keyed by pool and run id


def when(value: Any) -> str | None:
    """Epoch seconds or RFC 3339 text as RFC 3339 UTC text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What ``GET /runs`` asks for: a state (``active``: running, waiting or paused; ``all``) and,
    when given, the kind, name and pool a run must have."""

    state: str = "all"
    kind: str | None = None
    name: str | None = None
    pool: str | None = None

    def states(self) -> tuple[str, ...] | None:
        """The states a run may be in (None: any)."""
        if self.state == "all":
            return None
        return ACTIVE if self.state == "active" else (self.state,)

    def extra(self) -> bool:
        """True when kind, name or pool is asked for."""
        return any(v is not None for v in (self.kind, self.name, self.pool))

    def matches(self, summary: Mapping[str, Any]) -> bool:
        states = self.states()
        if states is not None and summary.get("state") not in states:
            return False
        wanted = (("kind", self.kind), ("name", self.name), ("pool", self.pool))
        return all(value is None or summary.get(field) == value for field, value in wanted)


def approval_tasks(run: Mapping[str, Any]) -> list[str]:
    """The names of a workflow run's approval tasks (waiting, or declaring approvers)."""
    if run.get("kind") != "workflow":
        return []
    tasks = run.get("tasks") or {}
    return [n for n, t in tasks.items() if "approvers" in t or t.get("status") == "waiting"]


class RunBook:
    """The runs and answers of the state view, as the APIs show them: what a run looks like (summary,
    detail, approvals) is defined here once; where the records come from is a subclass's
    (:class:`MemoryBook`: a snapshot of records in memory; the event center's local store:
    :class:`whale_event_center.runs_store.StoredBook`)."""

    @classmethod
    def of(cls, view: Any) -> RunBook:
        """From the event center's :class:`~whale_event_center.state_view.StateView` (its
        ``book()``), or a view of CloudEvents (a :class:`~whale.compacted.CompactedView`) of
        ``whale.executor.state``."""
        book = getattr(view, "book", None)
        if callable(book):
            found: RunBook = book()
            return found
        return MemoryBook({key: event.data for key, event in view.items().items()})

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The record of run ``run_id`` (None: not recorded)."""
        raise NotImplementedError

    def record(self, key: str) -> Mapping[str, Any] | None:
        """The record of state key ``key`` (an answer: approval, cancel or pause)."""
        raise NotImplementedError

    def runs_page(self, wanted: RunFilter, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The summaries of the runs ``wanted`` selects, newest first (by ``started_at``), from
        ``offset``, at most ``limit``; and how many it selects in all."""
        raise NotImplementedError

    def approvals(self) -> list[dict[str, Any]]:
        """The pending approvals, oldest first (by ``since``)."""
        raise NotImplementedError

    def paused(self, run: Mapping[str, Any]) -> bool:
        found = self.record(f"{run.get('pool')}/pause/{run.get('run_id')}") or {}
        return bool(found.get("paused")) and run.get("status") != "finished"

    def cancel_requested(self, run: Mapping[str, Any]) -> bool:
        return self.record(f"{run.get('pool')}/cancel/{run.get('run_id')}") is not None

    def answer(self, run: Mapping[str, Any], task: str) -> Mapping[str, Any] | None:
        return self.record(f"{run.get('pool')}/approval/{run.get('run_id')}/{task}")

    # ------------------------------------------------------------------ runs
    def summary(self, run: Mapping[str, Any]) -> dict[str, Any]:
        result = run.get("result_event") if isinstance(run.get("result_event"), Mapping) else {}
        assert isinstance(result, Mapping)
        target = run.get("target") if isinstance(run.get("target"), Mapping) else {}
        assert isinstance(target, Mapping)
        return {
            "run_id": run.get("run_id"),
            "kind": run.get("kind"),
            "name": run.get("workflow") or target.get("name"),
            "pool": run.get("pool"),
            "state": "paused" if self.paused(run) else state_of(run),
            "started_at": when(run.get("started_at")),
            "finished_at": when(result.get("time")) if result else None,
            "rule": run.get("rule"),
            "retry_of": run.get("retry_of"),
        }

    def detail(self, run: Mapping[str, Any]) -> dict[str, Any]:
        result = run.get("result_event") if isinstance(run.get("result_event"), Mapping) else {}
        assert isinstance(result, Mapping)
        data = result.get("data") if isinstance(result.get("data"), Mapping) else {}
        assert isinstance(data, Mapping)
        tasks = {}
        for name, task in (run.get("tasks") or {}).items():
            shown = {k: task.get(k) for k in TASK_FIELDS}
            shown["started_at"] = when(task.get("started_at") or task.get("since"))
            if task.get("reused_from"):
                shown["reused_from"] = task["reused_from"]
            tasks[name] = shown
        return {
            **self.summary(run),
            "request_id": run.get("request_id"),
            "requested_by": run.get("requested_by"),
            "idempotency_key": run.get("idempotency_key"),
            "correlationid": _correlation(run),
            "input": run.get("input"),
            "output": data.get("output"),
            "error": data.get("error"),
            "attempt": run.get("attempt") if run.get("kind") == "action" else None,
            "cancel_requested": self.cancel_requested(run),
            "tasks": tasks,
        }

    # ------------------------------------------------------------------ approvals
    def approval(self, run: Mapping[str, Any], name: str) -> dict[str, Any]:
        task = (run.get("tasks") or {}).get(name) or {}
        answer = self.answer(run, name)
        if answer is not None:
            status = "approved" if answer.get("approved") else "denied"
        elif task.get("status") == "waiting" and run.get("status") != "finished":
            status = "pending"
        else:
            status = "closed"  # timed out, cancelled, or the run ended otherwise
        return {
            "id": f"{run.get('run_id')}.{name}",
            "run_id": run.get("run_id"),
            "workflow": run.get("workflow"),
            "pool": run.get("pool"),
            "task": name,
            "question": task.get("message"),
            "requester": {
                "rule": run.get("rule"),
                "request_id": run.get("request_id"),
                "source": run.get("requested_by"),
            },
            "since": when(task.get("since")),
            "deadline": when(task.get("deadline")),
            "approvers": task.get("approvers"),
            "response_schema": task.get("response_schema"),
            "status": status,
            "answer": None
            if answer is None
            else {k: answer.get(k) for k in ("by", "answered_by", "comment", "response")},
        }

    def find_approval(self, approval_id: str) -> tuple[dict[str, Any], str] | None:
        """(the run, the task) of ``<run id>.<task>``."""
        run_id, dot, task = approval_id.partition(".")
        run = self.get(run_id)
        if not dot or run is None or task not in (run.get("tasks") or {}):
            return None
        return run, task


class MemoryBook(RunBook):
    """A snapshot of the view's records (key -> record) in memory, every listing computed from all
    of them (a view of CloudEvents, e.g. in unit tests)."""

    def __init__(self, records: Mapping[str, Any]) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.answers: dict[str, dict[str, Any]] = {}  # "<pool>/approval/<run>/<task>", .../cancel|pause/<run>
        for key, record in records.items():
            if not isinstance(record, Mapping):
                continue
            kind = record.get("kind")
            if kind in RUN_KINDS and isinstance(record.get("run_id"), str):
                self.runs[record["run_id"]] = dict(record)
                self.keys[record["run_id"]] = key
            elif kind in ANSWER_KINDS:
                self.answers[key] = dict(record)

    def get(self, run_id: str) -> dict[str, Any] | None:
        return self.runs.get(run_id)

    def record(self, key: str) -> Mapping[str, Any] | None:
        return self.answers.get(key)

    def runs_page(self, wanted: RunFilter, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        found = [s for s in (self.summary(r) for r in self.runs.values()) if wanted.matches(s)]
        found.sort(key=lambda r: str(r["started_at"] or ""), reverse=True)
        return found[offset : offset + limit], len(found)

    def approvals(self) -> list[dict[str, Any]]:
        out = []
        for run in self.runs.values():
            for name in approval_tasks(run):
                found = self.approval(run, name)
                if found["status"] == "pending":
                    out.append(found)
        return sorted(out, key=lambda a: str(a.get("since") or ""))


def state_of(run: Mapping[str, Any]) -> str:
    if run.get("status") == "finished":
        result = run.get("result_event")
        type_ = result.get("type") if isinstance(result, Mapping) else None
        return FINISHED_STATE.get(str(type_), "failed")
    tasks = (run.get("tasks") or {}).values()
    return "waiting" if any(t.get("status") == "waiting" for t in tasks) else "running"


def _correlation(run: Mapping[str, Any]) -> str | None:
    for name in ("result_event", "outbox"):
        event = run.get(name)
        if isinstance(event, Mapping) and isinstance(event.get("correlationid"), str):
            return str(event["correlationid"])
    return None
