"""The ``/todos`` API: list, open, claim, unclaim, comment, resolve, update (assignee, priority, due)
and reopen to-do items.

Reads come from a view of the compacted ``whale.todos`` topic. Writes are commands written to
``whale.events`` (``whale.todo.requested``, ``whale.todo.change.requested``, key = item id) that the
to-do stage (the single writer of ``whale.todos``) applies; the API then waits briefly for the change
to be visible and answers with the item (200/201), or 202 with the command id when the stage is slow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from whale import audit, topics
from whale.authz import Identity, Role, require
from whale.cloudevent import CloudEvent, edge_problems, format_time
from whale.compacted import CompactedView
from whale.correlation import CORRELATION_ID
from whale.errors import EventError, InvalidRequest
from whale.event_data import READ_DEPTH, depth_within
from whale.settings import WhaleSettings
from whale.todos import CHANGE_REQUESTED, OPEN_STATES, REQUESTED, is_overdue, parse_priority
from whale.tokens import ViewTokenBook
from whale_event_center.errors import AlreadyResolved, Conflict, NotFound

API_SOURCE = "whale/todo-api"
WAIT_SECONDS = 10.0


class ChangeBody(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="who does it")
    comment: str | None = Field(default=None, max_length=10_000)


class UpdateBody(BaseModel):
    """``PATCH /todos/{id}``: the fields named change (``assignee: null`` unassigns, ``due: null``
    clears the due time); the others stay."""

    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(
        default=None, min_length=1, max_length=200, description="a known person (null: unassign)"
    )
    priority: str | None = Field(default=None, description="p1..p4 or critical, high, normal, low")
    due: AwareDatetime | None = Field(default=None, description="RFC 3339 with an offset (null: none)")
    by: str | None = Field(default=None, min_length=1, max_length=200, description="who (dev mode only)")
    comment: str | None = Field(default=None, max_length=10_000)

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str | None) -> str | None:
        return None if value is None else parse_priority(value)


class ReopenBody(BaseModel):
    by: str | None = Field(default=None, min_length=1, max_length=200, description="who (dev mode only)")
    comment: str | None = Field(default=None, max_length=10_000, description="why")


class OpenBody(BaseModel):
    title: str = Field(min_length=1, max_length=500)
    key: str | None = Field(
        default=None, max_length=500, description="merge key (an open item with it is merged)"
    )
    type: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=500)
    details: dict[str, Any] = Field(default_factory=dict)
    by: str | None = Field(default=None, max_length=200)


def public(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as the API shows it; details nested deeper than events may be (stored before the
    limit) are shown as their JSON text, so one item never breaks the listing."""
    out = {k: v for k, v in item.items() if k not in ("seen", "last_command")}
    if not depth_within(out, READ_DEPTH):
        out = {k: (v if depth_within(v, READ_DEPTH - 1) else _as_text(v)) for k, v in out.items()}
    return out


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return "(nested too deeply to show)"


class TodoReader:
    """The ``whale.todos`` view, started on first use (so the router needs no lifespan)."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self._started = False
        self._lock = asyncio.Lock()

    async def ready(self) -> Any:
        async with self._lock:
            if not self._started:
                await self.view.start()
                self._started = True
        return self.view

    async def items(self) -> list[dict[str, Any]]:
        view = await self.ready()
        return [dict(e.data) for e in view.items().values() if isinstance(e.data, Mapping)]

    async def get(self, todo_id: str) -> dict[str, Any]:
        view = await self.ready()
        event = view.get(todo_id)
        if event is None or not isinstance(event.data, Mapping):
            raise NotFound(f"no to-do {todo_id!r}", field="todo_id")
        return dict(event.data)

    async def wait(self, predicate: Callable[[dict[str, CloudEvent]], bool]) -> bool:
        view = await self.ready()
        return bool(await asyncio.to_thread(view.wait_for, predicate, WAIT_SECONDS))


@dataclass(frozen=True, slots=True)
class TodoApi:
    """What the ``/todos`` routes use: the event center's producer and the ``whale.todos`` reader."""

    producer: Any
    reader: TodoReader
    people: Any = None  # the whale.tokens view an assignee is checked against (None: any name)


def known_people(people: Any) -> set[str]:
    """Names of the people the event center knows (anyone issued a personal token, in the
    ``whale.tokens`` view); empty when it cannot tell (no view, or people sign in with OIDC only)."""
    if people is None:
        return set()
    return {
        str(r["name"])
        for r in ViewTokenBook(people).records()
        if r.get("kind", "person") == "person" and r.get("name")
    }


def get_todo_api(request: Request) -> TodoApi:
    """The app's :class:`TodoApi` (set by :func:`install`)."""
    api: TodoApi = request.app.state.todo_api
    return api


router = APIRouter(tags=["todos"])


@router.get(
    "/todos",
    summary="List to-do items (most recently changed first)",
    dependencies=[require(Role.viewer)],
)
async def list_todos(
    api: Annotated[TodoApi, Depends(get_todo_api)],
    status: Annotated[
        Literal["open", "claimed", "resolved", "active", "all"],
        Query(description="active = open or claimed"),
    ] = "active",
    type: str | None = None,
    assignee: Annotated[str | None, Query(description="only items assigned to this person")] = None,
    priority: Annotated[str | None, Query(description="p1..p4 (or critical, high, normal, low)")] = None,
    overdue: Annotated[bool | None, Query(description="true: open items past their due time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, description="items to skip (paging; see total)")] = 0,
) -> dict[str, Any]:
    items = await api.reader.items()
    if status == "active":
        items = [i for i in items if i.get("status") in OPEN_STATES]
    elif status != "all":
        items = [i for i in items if i.get("status") == status]
    if type is not None:
        items = [i for i in items if i.get("type") == type]
    if assignee is not None:
        items = [i for i in items if i.get("assignee") == assignee]
    if priority is not None:
        try:
            wanted = parse_priority(priority)
        except ValueError as exc:
            raise InvalidRequest(str(exc), field="query.priority") from None
        items = [i for i in items if i.get("priority") == wanted]
    if overdue is not None:
        now = datetime.now(UTC)
        items = [i for i in items if is_overdue(i, now, OPEN_STATES) == overdue]
    items.sort(key=lambda i: str(i.get("updated_at", "")), reverse=True)
    page = items[offset : offset + limit]
    return {"todos": [public(i) for i in page], "total": len(items), "offset": offset}


@router.get("/todos/{todo_id}", summary="One to-do item", dependencies=[require(Role.viewer)])
async def one_todo(todo_id: str, api: Annotated[TodoApi, Depends(get_todo_api)]) -> dict[str, Any]:
    return public(await api.reader.get(todo_id))


@router.post("/todos", status_code=201, summary="Open a to-do item (merged into an open one with its key)")
async def open_todo(
    body: OpenBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    data = body.model_dump(exclude_none=True)
    event = CloudEvent.create(type=REQUESTED, source=API_SOURCE, data=data, subject=body.subject)
    if edge_problems(event):  # the to-do stage nests details inside the item: keep room for it
        raise EventError("the to-do's details are nested too deeply", edge_problems(event))
    await api.producer.send(topics.EVENTS, event, key=body.key or event.id)
    await audit.record(api.producer, identity, "todo", "opened", body.key or event.id, None, data)

    def done(view: dict[str, CloudEvent]) -> bool:
        return any(isinstance(e.data, Mapping) and event.id in e.data.get("seen", []) for e in view.values())

    if await api.reader.wait(done):
        view = await api.reader.ready()
        for item_event in view.items().values():
            if isinstance(item_event.data, Mapping) and event.id in item_event.data.get("seen", []):
                return public(item_event.data)
    return _pending(event.id)


async def change(
    api: TodoApi, todo_id: str, op: str, body: Any, identity: Identity, fields: dict[str, Any] | None = None
) -> Any:
    item = await api.reader.get(todo_id)
    if op == "reopen" and item.get("status") != "resolved":
        raise Conflict(f"to-do {todo_id!r} is not resolved ({item.get('status')})", field="todo_id")
    if item.get("status") == "resolved" and op not in ("comment", "reopen"):
        raise AlreadyResolved(f"to-do {todo_id!r} is already resolved", field="todo_id")
    # a signed-in caller cannot speak for another
    by = (body.by or identity.name) if identity.via == "dev" else identity.name
    data: dict[str, Any] = {"todo_id": todo_id, "op": op, "by": by, "comment": body.comment}
    if fields is not None:
        data["fields"] = fields
    ext = {CORRELATION_ID: item["correlationid"]} if item.get("correlationid") else {}
    event = CloudEvent.create(type=CHANGE_REQUESTED, source=API_SOURCE, data=data, subject=todo_id, **ext)
    await api.producer.send(topics.EVENTS, event, key=todo_id)
    after = {"status": item.get("status"), **{k: v for k, v in data.items() if v is not None}}
    await audit.record(api.producer, identity, "todo", op, todo_id, public(item), after)

    def done(view: dict[str, CloudEvent]) -> bool:
        current = view.get(todo_id)
        return current is not None and current.data.get("last_command") == event.id

    if await api.reader.wait(done):
        return public(await api.reader.get(todo_id))
    return _pending(event.id)


@router.post("/todos/{todo_id}/claim", summary="Claim an item (status claimed)")
async def claim(
    todo_id: str,
    body: ChangeBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    return await change(api, todo_id, "claim", body, identity)


@router.post("/todos/{todo_id}/unclaim", summary="Give an item back (status open)")
async def unclaim(
    todo_id: str,
    body: ChangeBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    return await change(api, todo_id, "unclaim", body, identity)


@router.post("/todos/{todo_id}/comment", summary="Add a comment")
async def comment(
    todo_id: str,
    body: ChangeBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    return await change(api, todo_id, "comment", body, identity)


@router.post("/todos/{todo_id}/resolve", summary="Resolve an item (status resolved)")
async def resolve(
    todo_id: str,
    body: ChangeBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    return await change(api, todo_id, "resolve", body, identity)


@router.patch(
    "/todos/{todo_id}",
    summary="Assign (or unassign), reprioritise or set the due time of an item",
)
async def update(
    todo_id: str,
    body: UpdateBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    named = body.model_fields_set & {"assignee", "priority", "due"}
    if not named:
        raise InvalidRequest("name at least one of assignee, priority, due", field="body")
    if "priority" in named and body.priority is None:
        raise InvalidRequest("priority cannot be cleared: one of p1..p4", field="body.priority")
    if body.assignee is not None:
        known = known_people(api.people)
        if known and body.assignee not in known | {identity.name}:
            raise InvalidRequest(
                f"assignee {body.assignee!r} is not a person the event center knows "
                "(nobody with that name was issued a personal token)",
                field="body.assignee",
            )
    fields: dict[str, Any] = {}
    if "assignee" in named:
        fields["assignee"] = body.assignee
    if "priority" in named:
        fields["priority"] = body.priority
    if "due" in named:
        fields["due"] = format_time(body.due.astimezone(UTC)) if body.due is not None else None
    return await change(api, todo_id, "update", body, identity, fields)


@router.post("/todos/{todo_id}/reopen", summary="Reopen a resolved item (recorded in its history)")
async def reopen(
    todo_id: str,
    body: ReopenBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[TodoApi, Depends(get_todo_api)],
) -> Any:
    return await change(api, todo_id, "reopen", body, identity)


def install(
    app: FastAPI, producer: Any, settings: WhaleSettings, *, view: Any = None, people: Any = None
) -> None:
    """The ``/todos`` routes on ``app``; ``producer`` is the event center's
    :class:`~whale.producer.EventProducer`, ``view`` the ``whale.todos`` view (default: a new one),
    ``people`` the ``whale.tokens`` view an assignee is checked against (None: any name)."""
    reader = TodoReader(view if view is not None else CompactedView(settings, topics.TODOS))
    app.state.todo_api = TodoApi(producer, reader, people)
    app.include_router(router)


def _pending(command_id: str) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        status_code=202,
        content={
            "status": "pending",
            "command_id": command_id,
            "message": "the to-do stage has not applied it yet",
        },
    )
