"""The ``/todos`` API: list, open, claim, unclaim, comment and resolve to-do items.

Reads come from a view of the compacted ``whale.todos`` topic. Writes are commands written to
``whale.events`` (``whale.todo.requested``, ``whale.todo.change.requested``, key = item id) that the
to-do stage (the single writer of ``whale.todos``) applies; the API then waits briefly for the change
to be visible and answers with the item (200/201), or 202 with the command id when the stage is slow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from whale import audit, topics
from whale.authz import Identity, Role, require
from whale.cloudevent import CloudEvent, edge_problems
from whale.compacted import CompactedView
from whale.correlation import CORRELATION_ID
from whale.errors import EventError
from whale.event_data import READ_DEPTH, depth_within
from whale.settings import WhaleSettings
from whale_event_center.errors import AlreadyResolved, NotFound
from whale_event_center.todos import CHANGE_REQUESTED, OPEN_STATES, REQUESTED

API_SOURCE = "whale/todo-api"
WAIT_SECONDS = 10.0


class ChangeBody(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="who does it")
    comment: str | None = Field(default=None, max_length=10_000)


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


def build_router(producer: Any, settings: WhaleSettings, *, view: Any = None) -> APIRouter:
    """The ``/todos`` router; ``producer`` is the event center's :class:`~whale.producer.EventProducer`."""
    reader = TodoReader(view if view is not None else CompactedView(settings, topics.TODOS))
    router = APIRouter(tags=["todos"])

    @router.get(
        "/todos",
        summary="List to-do items (most recently changed first)",
        dependencies=[require(Role.viewer)],
    )
    async def list_todos(
        status: Annotated[
            Literal["open", "claimed", "resolved", "active", "all"],
            Query(description="active = open or claimed"),
        ] = "active",
        type: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, description="items to skip (paging; see total)")] = 0,
    ) -> dict[str, Any]:
        items = await reader.items()
        if status == "active":
            items = [i for i in items if i.get("status") in OPEN_STATES]
        elif status != "all":
            items = [i for i in items if i.get("status") == status]
        if type is not None:
            items = [i for i in items if i.get("type") == type]
        items.sort(key=lambda i: str(i.get("updated_at", "")), reverse=True)
        page = items[offset : offset + limit]
        return {"todos": [public(i) for i in page], "total": len(items), "offset": offset}

    @router.get("/todos/{todo_id}", summary="One to-do item", dependencies=[require(Role.viewer)])
    async def one_todo(todo_id: str) -> dict[str, Any]:
        return public(await reader.get(todo_id))

    @router.post(
        "/todos", status_code=201, summary="Open a to-do item (merged into an open one with its key)"
    )
    async def open_todo(body: OpenBody, identity: Annotated[Identity, require(Role.operator)]) -> Any:
        data = body.model_dump(exclude_none=True)
        event = CloudEvent.create(type=REQUESTED, source=API_SOURCE, data=data, subject=body.subject)
        if edge_problems(event):  # the to-do stage nests details inside the item: keep room for it
            raise EventError("the to-do's details are nested too deeply", edge_problems(event))
        await producer.send(topics.EVENTS, event, key=body.key or event.id)
        await audit.record(producer, identity, "todo", "opened", body.key or event.id, None, data)

        def done(view: dict[str, CloudEvent]) -> bool:
            return any(
                isinstance(e.data, Mapping) and event.id in e.data.get("seen", []) for e in view.values()
            )

        if await reader.wait(done):
            view = await reader.ready()
            for item_event in view.items().values():
                if isinstance(item_event.data, Mapping) and event.id in item_event.data.get("seen", []):
                    return public(item_event.data)
        return _pending(event.id)

    async def change(todo_id: str, op: str, body: ChangeBody, identity: Identity) -> Any:
        item = await reader.get(todo_id)
        if item.get("status") == "resolved" and op != "comment":
            raise AlreadyResolved(f"to-do {todo_id!r} is already resolved", field="todo_id")
        by = (
            body.by if identity.via == "dev" else identity.name
        )  # a signed-in caller cannot speak for another
        data = {"todo_id": todo_id, "op": op, "by": by, "comment": body.comment}
        ext = {CORRELATION_ID: item["correlationid"]} if item.get("correlationid") else {}
        event = CloudEvent.create(type=CHANGE_REQUESTED, source=API_SOURCE, data=data, subject=todo_id, **ext)
        await producer.send(topics.EVENTS, event, key=todo_id)
        after = {"status": item.get("status"), **{k: v for k, v in data.items() if v is not None}}
        await audit.record(producer, identity, "todo", op, todo_id, public(item), after)

        def done(view: dict[str, CloudEvent]) -> bool:
            current = view.get(todo_id)
            return current is not None and current.data.get("last_command") == event.id

        if await reader.wait(done):
            return public(await reader.get(todo_id))
        return _pending(event.id)

    @router.post("/todos/{todo_id}/claim", summary="Claim an item (status claimed)")
    async def claim(
        todo_id: str, body: ChangeBody, identity: Annotated[Identity, require(Role.operator)]
    ) -> Any:
        return await change(todo_id, "claim", body, identity)

    @router.post("/todos/{todo_id}/unclaim", summary="Give an item back (status open)")
    async def unclaim(
        todo_id: str, body: ChangeBody, identity: Annotated[Identity, require(Role.operator)]
    ) -> Any:
        return await change(todo_id, "unclaim", body, identity)

    @router.post("/todos/{todo_id}/comment", summary="Add a comment")
    async def comment(
        todo_id: str, body: ChangeBody, identity: Annotated[Identity, require(Role.operator)]
    ) -> Any:
        return await change(todo_id, "comment", body, identity)

    @router.post("/todos/{todo_id}/resolve", summary="Resolve an item (status resolved)")
    async def resolve(
        todo_id: str, body: ChangeBody, identity: Annotated[Identity, require(Role.operator)]
    ) -> Any:
        return await change(todo_id, "resolve", body, identity)

    return router


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
