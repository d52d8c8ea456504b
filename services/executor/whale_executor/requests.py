"""The ``whale.action.requested`` contract, parsed with every problem named."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from whale.cloudevent import CloudEvent
from whale_executor.errors import RequestInvalid

REQUESTED = "whale.action.requested"


class Target(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["action", "workflow"]
    name: str = Field(min_length=1)
    pool: str = Field(min_length=1)


class RuleRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    version: int


class ActionRequest(BaseModel):
    """``data`` of a ``whale.action.requested`` event."""

    model_config = ConfigDict(extra="ignore")

    rule: RuleRef | None = None
    target: Target
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = Field(min_length=1, max_length=512)
    retry_of: str | None = Field(default=None, description="a workflow run this one retries")


def parse_request(event: CloudEvent) -> ActionRequest:
    """Raise :class:`RequestInvalid` naming each bad field of the request."""
    if event.type != REQUESTED:
        raise RequestInvalid(
            f"unexpected event type {event.type!r} on an actions topic (expected {REQUESTED})",
            [{"field": "type", "message": f"expected {REQUESTED}"}],
        )
    try:
        return ActionRequest.model_validate(event.data)
    except ValidationError as exc:
        problems = [
            {
                "field": "data." + ".".join(str(p) for p in err["loc"]) if err["loc"] else "data",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise RequestInvalid(f"invalid action request: {text}", problems) from None


def loose_target(event: CloudEvent) -> dict[str, Any]:
    """What can be read of a malformed request's target (for its failed result)."""
    data = event.data if isinstance(event.data, dict) else {}
    target = data.get("target")
    return target if isinstance(target, dict) else {}


def loose_key(event: CloudEvent) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    key = data.get("idempotency_key")
    return key if isinstance(key, str) and key else event.id
