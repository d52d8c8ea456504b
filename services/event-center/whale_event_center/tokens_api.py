"""The ``/tokens`` API (admin): list, create and revoke personal API tokens.

Records live on the compacted ``whale.tokens`` topic (:mod:`whale.tokens`); the token itself is
returned once, by the create call, and never stored. A revocation is a new record with
``revoked: true``, seen by every replica that follows the topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from whale import audit, tokens, topics
from whale.authz import Identity, Role, require
from whale.compacted import CompactedView
from whale.producer import EventProducer
from whale_event_center.entity_api import NOT_SAVED, Entities
from whale_event_center.errors import EventCenterError


class InvalidToken(EventCenterError, status=400, code="invalid_token"):
    """The token request names a bad name or role (400)."""


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="who the token is for")
    role: Literal["viewer", "operator", "author", "admin"]
    kind: Literal["person", "service"] = "person"
    team: str | None = Field(default=None, max_length=100)
    ttl_days: int | None = Field(default=90, ge=1, le=3650, description="days until it expires (null: never)")
    grants: list[Literal["delegate"]] = Field(
        default_factory=list,
        description="delegate: may act for people (X-Whale-On-Behalf-Of), e.g. the chat adapter",
    )


@dataclass(frozen=True, slots=True)
class TokensApi:
    """What the ``/tokens`` routes use: the producer and the ``whale.tokens`` entities."""

    producer: EventProducer
    entities: Entities


def get_tokens_api(request: Request) -> TokensApi:
    """The app's :class:`TokensApi` (set by :func:`install`)."""
    api: TokensApi = request.app.state.tokens_api
    return api


router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("", summary="Every personal token (no secrets)", dependencies=[require(Role.admin)])
async def list_tokens(api: Annotated[TokensApi, Depends(get_tokens_api)]) -> dict[str, Any]:
    return {"tokens": [tokens.public(d) for d in api.entities.documents()]}


@router.post(
    "",
    status_code=201,
    summary="Create a personal token (the token is in this answer only)",
    responses={503: NOT_SAVED},
)
async def create_token(
    api: Annotated[TokensApi, Depends(get_tokens_api)],
    body: NewToken,
    identity: Annotated[Identity, require(Role.admin)],
) -> dict[str, Any]:
    token_id, token = tokens.new_personal_token()
    ttl = timedelta(days=body.ttl_days) if body.ttl_days is not None else None
    try:
        record = tokens.new_record(
            token, token_id, name=body.name, role=Role.parse(body.role), kind=body.kind,
            team=body.team, ttl=ttl, created_by=identity.name, grants=tuple(body.grants),
        )  # fmt: skip
    except ValueError as exc:
        raise InvalidToken(str(exc), field="name") from None
    await api.entities.write(
        token_id, tokens.to_event(record), lambda data: data.get("sha256") == record["sha256"]
    )
    await audit.record(api.producer, identity, "token", "created", token_id, None, tokens.public(record))
    return {**tokens.public(record), "token": token}


@router.delete(
    "/{token_id}",
    status_code=204,
    summary="Revoke a token (kept, marked revoked)",
    responses={404: {"description": "no such token"}},
)
async def revoke_token(
    api: Annotated[TokensApi, Depends(get_tokens_api)],
    token_id: str,
    identity: Annotated[Identity, require(Role.admin)],
) -> Response:
    before = api.entities.stored(token_id)
    after = tokens.revoked(before, identity.name)
    await api.entities.write(token_id, tokens.to_event(after), lambda data: bool(data.get("revoked")))
    await audit.record(
        api.producer, identity, "token", "revoked", token_id, tokens.public(before), tokens.public(after)
    )
    return Response(status_code=204)


def install(app: FastAPI, producer: EventProducer, view: CompactedView) -> None:
    """The ``/tokens`` routes on ``app``, over the ``whale.tokens`` ``view``."""
    entities = Entities(producer, view, topics.TOKENS, noun="token", key_field="token_id")
    app.state.tokens_api = TokensApi(producer, entities)
    app.include_router(router)
