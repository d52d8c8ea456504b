"""``/runs``: workflow and action runs (list, show, cancel, retry), read from the compacted
``whale.executor.state`` view (:mod:`.runs_view`).

Cancel writes ``whale.run.cancel.requested`` on ``whale.events`` (key = run id): the executors of the
run's pool record it on the state topic, which every executor of the pool follows, so the one
running the run sees it whichever partition it owns; it stops the running tasks (shell and SSH
process groups killed, HTTP calls abandoned) and ends the run with ``whale.workflow.cancelled`` (an
action run with ``whale.action.cancelled``). Retry sends a new ``whale.action.requested`` for the
workflow to the run's pool, naming the old run in ``retry_of``: the new run reuses the recorded
outputs of the tasks that succeeded and starts from the failed ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from whale import runs as run_ids
from whale import topics
from whale.authz import Identity, Role, require
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.correlation import CORRELATION_ID
from whale.errors import WhaleError
from whale.es.store import Store
from whale.producer import EventProducer
from whale_event_center.errors import Conflict, NotFound
from whale_event_center.runs_view import ACTIVE, RunBook, RunFilter
from whale_event_center.search import present
from whale_event_center.state_view import StateView

API_SOURCE = "whale/runs-api"
CANCEL_REQUESTED = "whale.run.cancel.requested"
PAUSE_REQUESTED = "whale.run.pause.requested"
RESUME_REQUESTED = "whale.run.resume.requested"
REQUESTED = "whale.action.requested"
RETRYABLE = ("failed", "cancelled", "timed_out", "abandoned")
States = Literal[
    "running", "waiting", "succeeded", "failed", "timed_out", "abandoned", "cancelled", "active", "all"
]


class CancelBody(BaseModel):
    comment: str | None = Field(default=None, max_length=10_000)


@dataclass(frozen=True, slots=True)
class RunsApi:
    """What the ``/runs`` routes use: the producer, the ``whale.executor.state`` view, and the
    Elasticsearch store the triggers are read from (None: runs are shown without their trigger)."""

    producer: EventProducer
    view: StateView | CompactedView
    store: Store | None = None

    def find(self, run_id: str) -> tuple[RunBook, dict[str, Any]]:
        book = RunBook.of(self.view)
        run = book.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r} is recorded (or it was swept)", field="run_id")
        return book, run


def get_runs_api(request: Request) -> RunsApi:
    """The app's :class:`RunsApi` (set by :func:`install`)."""
    api: RunsApi = request.app.state.runs_api
    return api


Api = Annotated[RunsApi, Depends(get_runs_api)]
Operator = Annotated[Identity, require(Role.operator)]
router = APIRouter(tags=["runs"])


@router.get("/runs", summary="Runs, newest first", dependencies=[require(Role.viewer)])
async def list_runs(
    api: Api,
    state: Annotated[States, Query(description="active = running or waiting")] = "all",
    kind: Literal["workflow", "action"] | None = None,
    name: str | None = None,
    pool: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    wanted = RunFilter(state, kind, name, pool)
    runs, total = RunBook.of(api.view).runs_page(wanted, offset, limit)
    return {"runs": runs, "total": total, "offset": offset}


@router.get("/runs/{run_id}", summary="One run: tasks, attempts, timings, input, output, trigger",
            dependencies=[require(Role.viewer)])  # fmt: skip
async def one_run(api: Api, run_id: str) -> dict[str, Any]:
    book, run = api.find(run_id)
    out = book.detail(run)
    out["trigger"] = await trigger(api.store, run.get("request_id"))
    return out


@router.post("/runs/{run_id}/cancel", status_code=202, summary="Cancel a running run",
             responses={404: {"description": "no such run"}, 409: {"description": "the run has ended"}})  # fmt: skip
async def cancel(api: Api, run_id: str, body: CancelBody, identity: Operator) -> dict[str, Any]:
    book, run = api.find(run_id)
    return await control(api, book, run, CANCEL_REQUESTED, body, identity)


async def control(
    api: RunsApi, book: RunBook, run: dict[str, Any], type_: str, body: CancelBody, identity: Identity
) -> dict[str, Any]:
    """Write the ``type_`` request (cancel, pause, resume) for an active ``run`` on ``whale.events``."""
    run_id = str(run["run_id"])
    summary = book.summary(run)
    if summary["state"] not in ACTIVE:
        raise Conflict(f"run {run_id!r} has ended ({summary['state']})", field="run_id")
    data = {
        "run_id": run_id,
        "by": identity.name,
        "answered_by": identity.actor(),
        "comment": body.comment,
    }
    correlation = book.detail(run)["correlationid"]
    ext = {CORRELATION_ID: correlation} if correlation else {}
    event = CloudEvent.create(type=type_, source=API_SOURCE, subject=run_id, data=data, **ext)
    await api.producer.send(topics.EVENTS, event, key=run_id)
    return {"run_id": run_id, "status": type_.split(".")[2] + "_requested", "event_id": event.id}


async def pause_or_resume(
    api: RunsApi, run_id: str, type_: str, body: CancelBody, identity: Identity
) -> dict[str, Any]:
    book, run = api.find(run_id)
    if run.get("kind") != "workflow":
        raise Conflict(f"run {run_id!r} is an action run: only workflow runs pause", field="run_id")
    return await control(api, book, run, type_, body, identity)


PAUSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such run"},
    409: {"description": "ended, or an action run"},
}


@router.post("/runs/{run_id}/pause", status_code=202, responses=PAUSE_RESPONSES,
             summary="Pause a workflow run (a paused run starts no new task)")  # fmt: skip
async def pause(api: Api, run_id: str, body: CancelBody, identity: Operator) -> dict[str, Any]:
    return await pause_or_resume(api, run_id, PAUSE_REQUESTED, body, identity)


@router.post("/runs/{run_id}/resume", status_code=202, responses=PAUSE_RESPONSES,
             summary="Resume a workflow run (a paused run starts no new task)")  # fmt: skip
async def resume(api: Api, run_id: str, body: CancelBody, identity: Operator) -> dict[str, Any]:
    return await pause_or_resume(api, run_id, RESUME_REQUESTED, body, identity)


@router.post("/runs/{run_id}/retry", status_code=202, summary="Re-run a failed workflow run from its failed tasks",
             responses={404: {"description": "no such run"}, 409: {"description": "not a failed workflow run"}})  # fmt: skip
async def retry(api: Api, run_id: str, identity: Operator) -> dict[str, Any]:
    book, run = api.find(run_id)
    summary = book.summary(run)
    if run.get("kind") != "workflow" or summary["state"] not in RETRYABLE:
        raise Conflict(
            f"run {run_id!r} is a {summary['kind']} run in state {summary['state']}: only failed, "
            "cancelled, timed out or abandoned workflow runs can be retried",
            field="run_id",
        )
    pool = str(run.get("pool"))
    key = f"{str(run.get('idempotency_key'))[:400]}/retry-{uuid.uuid4().hex[:12]}"
    data = {
        "rule": run.get("rule"),
        "target": run.get("target"),
        "params": run.get("input") or {},
        "idempotency_key": key,
        "retry_of": run_id,
        "requested_by": identity.actor(),
    }
    correlation = book.detail(run)["correlationid"]
    ext = {CORRELATION_ID: correlation} if correlation else {}
    event = CloudEvent.create(
        type=REQUESTED, source=API_SOURCE, subject=run_id, data=data, retryof=run_id, **ext
    )
    await api.producer.send(topics.actions_topic(pool), event, key=key)
    new_id = run_ids.run_id("workflow", f"{pool}/{key}")
    return {"run_id": new_id, "retry_of": run_id, "request_id": event.id, "status": "requested"}


def install(
    app: FastAPI, producer: EventProducer, view: StateView | CompactedView, store: Store | None = None
) -> None:
    """The ``/runs`` routes on ``app``, over the ``whale.executor.state`` ``view``."""
    app.state.runs_api = RunsApi(producer, view, store)
    app.include_router(router)


async def trigger(store: Store | None, request_id: Any) -> dict[str, Any] | None:
    """The run's request and the event that caused it, as indexed (None when not indexed yet)."""
    if store is None or not isinstance(request_id, str):
        return None
    try:
        request = await _by_id(store, request_id)
        if request is None:
            return None
        event = request.get("event") if isinstance(request.get("event"), dict) else {}
        cause = event.get("causationid") if isinstance(event, dict) else None
        return {"request": request, "event": await _by_id(store, cause) if isinstance(cause, str) else None}
    except WhaleError:  # Elasticsearch down: the run itself is still shown
        return None


async def _by_id(store: Store, event_id: str) -> dict[str, Any] | None:
    query = {"size": 1, "query": {"term": {"id": event_id}}, "_source": {"excludes": ["data_text"]}}
    hits = (await store.search(query)).get("hits", {}).get("hits", [])
    return present(hits[0]) if hits else None
