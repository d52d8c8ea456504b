"""The ``/subscriptions`` API: list, read, save (validated), pause, resume and delete push subscriptions.

Subscriptions live on the compacted ``whale.subscriptions`` topic (key = subscription id, a
``whale.subscription.saved`` event whose data is the whole subscription, built by the shared
:meth:`whale.subscriptions.Subscription.to_record`, the same record ``whale subscriptions apply``
writes); every dispatcher replica follows that topic and applies changes live. A save is validated
with the shared model (endpoint, limits, the filter through :mod:`whale.rules.matching`) and answered once
Kafka acknowledged it and this process' view shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from pydantic import ValidationError

from whale import audit, topics
from whale.authz import Identity, NotPermitted, Role, require, topic_role
from whale.compacted import CompactedView
from whale.producer import EventProducer
from whale.subscriptions import Subscription
from whale_event_center.entity_api import INVALID, NOT_SAVED, Document, Entities, check_body_id
from whale_event_center.errors import EventCenterError, Problem


class InvalidSubscription(EventCenterError, status=400, code="invalid_subscription"):
    """The subscription breaks the model or its filter the matching language (400)."""


def _valid(doc: Document) -> Subscription:
    try:
        return Subscription.model_validate(doc)
    except ValidationError as exc:
        problems: list[Problem] = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "<body>"
            message = str(err["msg"]).removeprefix("Value error, ")
            if not err["loc"] and message.startswith("filter"):
                field, _, message = message.partition(": ")
            problems.append({"field": field, "message": message})
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise InvalidSubscription(f"invalid subscription: {summary}", problems) from None


def check_allowed(sub: Subscription, identity: Identity, push_hosts: Sequence[str] = ()) -> None:
    """403 unless ``identity`` may read every topic of ``sub`` and its endpoint's host is allowed."""
    for topic in sub.topics:
        needed = topic_role(topic)
        if identity.role < needed:
            raise NotPermitted(
                f"{identity.name!r} ({identity.role.name}) may not subscribe to {topic!r}: it needs {needed.name}",
                field="topics",
            )
    host = (urlsplit(sub.endpoint).hostname or "").lower()
    if push_hosts and not any(fnmatchcase(host, pattern.lower()) for pattern in push_hosts):
        raise NotPermitted(
            f"endpoint host {host!r} is not in the allowed push hosts ({', '.join(push_hosts)})",
            field="endpoint",
        )


@dataclass(frozen=True, slots=True)
class SubscriptionsApi:
    """What the ``/subscriptions`` routes use: the producer, the entities, the allowed push hosts."""

    producer: EventProducer
    entities: Entities
    push_hosts: Sequence[str] = ()

    async def save(self, sub: Subscription, identity: Identity) -> Document:
        check_allowed(sub, identity, self.push_hosts)
        before = self.entities.current(sub.id)
        state = sub.model_dump(mode="json")
        await self.entities.write(sub.id, sub.to_record(), lambda data: data == state)
        await audit.record(self.producer, identity, "subscription", "saved", sub.id, before, state)
        return state

    async def set_paused(self, name: str, paused: bool, identity: Identity) -> dict[str, Any]:
        return await self.save(_valid({**self.entities.stored(name), "paused": paused}), identity)


def get_subscriptions_api(request: Request) -> SubscriptionsApi:
    """The app's :class:`SubscriptionsApi` (set by :func:`install`)."""
    api: SubscriptionsApi = request.app.state.subscriptions_api
    return api


router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])


@router.get("", summary="Every push subscription", dependencies=[require(Role.viewer)])
async def list_subscriptions(
    api: Annotated[SubscriptionsApi, Depends(get_subscriptions_api)],
) -> dict[str, Any]:
    return {"subscriptions": api.entities.documents()}


@router.get(
    "/{name}",
    summary="One subscription",
    responses={404: {"description": "no such subscription"}},
    dependencies=[require(Role.viewer)],
)
async def get_subscription(
    name: str, api: Annotated[SubscriptionsApi, Depends(get_subscriptions_api)]
) -> dict[str, Any]:
    return api.entities.stored(name)


@router.put(
    "/{name}",
    summary="Create or replace a subscription (validated, the filter too)",
    responses={
        400: INVALID,
        503: NOT_SAVED,
    },
)
async def put_subscription(
    name: str,
    doc: Annotated[dict[str, Any], Body(description="the subscription (id optional)")],
    response: Response,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[SubscriptionsApi, Depends(get_subscriptions_api)],
) -> dict[str, Any]:
    check_body_id(doc, name, InvalidSubscription)
    existed = api.entities.current(name) is not None
    state = await api.save(_valid({**doc, "id": name}), identity)
    response.status_code = 200 if existed else 201
    return state


@router.post(
    "/{name}/pause", summary="Pause deliveries", responses={404: {"description": "no such subscription"}}
)
async def pause(
    name: str,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[SubscriptionsApi, Depends(get_subscriptions_api)],
) -> dict[str, Any]:
    return await api.set_paused(name, True, identity)


@router.post(
    "/{name}/resume",
    summary="Resume deliveries",
    responses={404: {"description": "no such subscription"}},
)
async def resume(
    name: str,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[SubscriptionsApi, Depends(get_subscriptions_api)],
) -> dict[str, Any]:
    return await api.set_paused(name, False, identity)


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a subscription (a tombstone on whale.subscriptions)",
    responses={404: {"description": "no such subscription"}},
)
async def delete_subscription(
    name: str,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[SubscriptionsApi, Depends(get_subscriptions_api)],
) -> Response:
    before = api.entities.stored(name)
    await api.entities.remove(name)
    await audit.record(api.producer, identity, "subscription", "deleted", name, before, None)
    return Response(status_code=204)


def install(
    app: FastAPI, producer: EventProducer, subscriptions: CompactedView, *, push_hosts: Sequence[str] = ()
) -> None:
    """The ``/subscriptions`` routes on ``app``, over the ``whale.subscriptions`` view."""
    entities = Entities(producer, subscriptions, topics.SUBSCRIPTIONS, noun="subscription", key_field="name")
    app.state.subscriptions_api = SubscriptionsApi(producer, entities, tuple(push_hosts))
    app.include_router(router)
