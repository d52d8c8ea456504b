"""``/approvals``: the approvals workflows wait for, and people's answers.

The pending list is read from the compacted ``whale.executor.state`` view (:mod:`.runs_view`). An
answer is checked here — who may answer (the task's ``approvers``: one of the named ``people``, or
the ``role`` or higher; any operator when none is declared), the ``response`` against the task's
``response_schema``, not answered yet — then written as ``whale.approval.granted|denied`` on
``whale.events`` (key = run id) with the answerer's identity, and answered 202 once Kafka
acknowledged it. The executor of the run's pool records the first answer and the workflow continues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from whale import topics
from whale.authz import Identity, NotPermitted, Role, require
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.correlation import CORRELATION_ID
from whale.errors import InvalidRequest
from whale.producer import EventProducer
from whale_event_center.errors import Conflict, NotFound
from whale_event_center.runs_view import RunBook
from whale_event_center.state_view import StateView

API_SOURCE = "whale/approvals-api"
GRANTED = "whale.approval.granted"
DENIED = "whale.approval.denied"


class Answer(BaseModel):
    decision: Literal["approve", "deny"]
    comment: str | None = Field(default=None, max_length=10_000)
    response: Any = Field(default=None, description="checked against the approval's response_schema")


def may_answer(identity: Identity, approvers: dict[str, Any] | None) -> None:
    """Raise 403 unless ``identity`` is one of the approvers (named, or holding the role)."""
    if not approvers or identity.via == "dev":
        return
    people = approvers.get("people") or []
    role = approvers.get("role")
    if identity.name in people or (role is not None and identity.role >= Role.parse(role)):
        return
    who = [f"role {role} or higher"] if role else []
    who += [", ".join(people)] if people else []
    raise NotPermitted(f"{identity.name!r} may not answer this approval; it needs {' or '.join(who)}")


def check_response(schema: dict[str, Any] | None, response: Any) -> None:
    """Raise 400 naming each place where ``response`` breaks ``schema``."""
    if schema is None:
        return
    errors = sorted(Draft202012Validator(schema).iter_errors(response), key=lambda e: list(e.path))
    if errors:
        problems = [
            {"field": ".".join(["response", *(str(p) for p in e.path)]), "message": e.message} for e in errors
        ]
        raise InvalidRequest(
            f"the response does not match the approval's schema: {errors[0].message}", problems
        )


@dataclass(frozen=True, slots=True)
class ApprovalsApi:
    """What the ``/approvals`` routes use: the producer, the ``whale.executor.state`` view, and the
    approvals answered through this replica (closes the gap until the executor records them)."""

    producer: EventProducer
    view: StateView | CompactedView
    answered: set[str] = field(default_factory=set)

    def book(self) -> RunBook:
        return RunBook.of(self.view)


def get_approvals_api(request: Request) -> ApprovalsApi:
    """The app's :class:`ApprovalsApi` (set by :func:`install`)."""
    api: ApprovalsApi = request.app.state.approvals_api
    return api


Api = Annotated[ApprovalsApi, Depends(get_approvals_api)]
router = APIRouter(tags=["approvals"])


@router.get("/approvals", summary="Pending approvals (oldest first)", dependencies=[require(Role.viewer)])
async def list_approvals(api: Api) -> dict[str, Any]:
    listed = api.book().approvals()
    api.answered.intersection_update(a["id"] for a in listed)  # forget what the executor recorded
    pending = [a for a in listed if a["id"] not in api.answered]
    return {"approvals": pending, "total": len(pending)}


@router.get("/approvals/{approval_id}", summary="One approval", dependencies=[require(Role.viewer)])
async def one_approval(api: Api, approval_id: str) -> dict[str, Any]:
    runs = api.book()
    found = runs.find_approval(approval_id)
    if found is None:
        raise NotFound(f"no approval {approval_id!r} (ids are <run id>.<task>)", field="approval_id")
    return runs.approval(*found)


@router.post(
    "/approvals/{approval_id}",
    status_code=202,
    summary="Approve or deny (202 once Kafka acknowledged the decision)",
    responses={
        400: {"description": "the response breaks the approval's response_schema (problems name it)"},
        403: {"description": "the caller is not one of the approval's approvers"},
        404: {"description": "no such approval"},
        409: {"description": "already answered, or no longer waiting"},
    },
)
async def answer(
    api: Api, approval_id: str, body: Answer, identity: Annotated[Identity, require(Role.operator)]
) -> dict[str, Any]:
    runs = api.book()
    found = runs.find_approval(approval_id)
    if found is None:
        raise NotFound(f"no approval {approval_id!r} (ids are <run id>.<task>)", field="approval_id")
    run, task = found
    shown = runs.approval(run, task)
    if shown["status"] != "pending" or approval_id in api.answered:
        status = "answered" if approval_id in api.answered else shown["status"]
        raise Conflict(f"approval {approval_id!r} is {status}, not pending", field="approval_id")
    may_answer(identity, shown["approvers"])
    check_response(shown["response_schema"], body.response)
    data = {
        "approval_id": approval_id,
        "run_id": run["run_id"],
        "task": task,
        "by": identity.name,
        "answered_by": identity.actor(),
        "comment": body.comment,
        "response": body.response,
    }
    correlation = runs.detail(run)["correlationid"]
    ext = {CORRELATION_ID: correlation} if correlation else {}
    event = CloudEvent.create(
        type=GRANTED if body.decision == "approve" else DENIED,
        source=API_SOURCE,
        subject=run["run_id"],
        data=data,
        **ext,
    )
    api.answered.add(approval_id)
    try:
        await api.producer.send(topics.EVENTS, event, key=run["run_id"])
    except BaseException:
        api.answered.discard(approval_id)
        raise
    return {
        "id": approval_id,
        "decision": body.decision,
        "event_id": event.id,
        "answered_by": identity.actor(),
    }


def install(app: FastAPI, producer: EventProducer, view: StateView | CompactedView) -> None:
    """The ``/approvals`` routes on ``app``, over the ``whale.executor.state`` ``view``."""
    app.state.approvals_api = ApprovalsApi(producer, view)
    app.include_router(router)
