"""``todo.open``: a workflow task (or rule) asks for a person (registered in ``whale.actions``).

The action itself only shapes the request: its output carries ``todo_request``, and the to-do stage
(``whale run todo``) opens the item, or merges into the open item with the same ``key``, when it
reads the result event on ``whale.results``. No HTTP call, no extra producer: the result event the
executor publishes anyway is the request.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from whale_executor.actions.base import ActionContext
from whale_executor.actions.python import action


class TodoParams(BaseModel):
    title: str = Field(min_length=1, max_length=500, description="what a person must do")
    key: str | None = Field(
        default=None, max_length=500, description="merge key: an open item with the same key absorbs this one"
    )
    details: dict[str, Any] = Field(default_factory=dict, description="anything that helps (JSON)")


class TodoRequest(BaseModel):
    title: str
    key: str
    details: dict[str, Any]
    request_id: str


class TodoOutput(BaseModel):
    todo_request: TodoRequest


@action(
    name="todo.open",
    params=TodoParams,
    output=TodoOutput,
    idempotent=True,
    description="Open a to-do item for a person (merged into an open item with the same key).",
)
async def open_todo(params: TodoParams, ctx: ActionContext) -> TodoOutput:
    request_id = f"{ctx.idempotency_key}/{ctx.task or 'action'}"
    return TodoOutput(
        todo_request=TodoRequest(
            title=params.title, key=params.key or request_id, details=params.details, request_id=request_id
        )
    )
