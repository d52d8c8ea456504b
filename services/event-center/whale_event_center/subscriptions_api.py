"""The ``/subscriptions`` API: list, read, save (validated), pause, resume and delete push subscriptions.

Subscriptions live on the compacted ``whale.subscriptions`` topic (key = subscription id, a
``whale.subscription.saved`` event whose data is the whole subscription, built by the shared
:meth:`whale.subscriptions.Subscription.to_record`, the same record ``whale subscriptions apply``
writes); every dispatcher replica follows that topic and applies changes live. A save is validated
with the shared model (endpoint, limits, the filter through :mod:`whale.rules.matching`) and answered once
Kafka acknowledged it and this process' view shows it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import ValidationError

from whale import topics
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


def build_router(producer: EventProducer, subscriptions: CompactedView) -> APIRouter:
    router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
    entities = Entities(producer, subscriptions, topics.SUBSCRIPTIONS, noun="subscription", key_field="name")

    async def save(sub: Subscription) -> Document:
        state = sub.model_dump(mode="json")
        await entities.write(sub.id, sub.to_record(), lambda data: data == state)
        return state

    @router.get("", summary="Every push subscription")
    async def list_subscriptions() -> dict[str, Any]:
        return {"subscriptions": entities.documents()}

    @router.get(
        "/{name}", summary="One subscription", responses={404: {"description": "no such subscription"}}
    )
    async def get_subscription(name: str) -> dict[str, Any]:
        return entities.stored(name)

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
    ) -> dict[str, Any]:
        check_body_id(doc, name, InvalidSubscription)
        existed = entities.current(name) is not None
        state = await save(_valid({**doc, "id": name}))
        response.status_code = 200 if existed else 201
        return state

    async def set_paused(name: str, paused: bool) -> dict[str, Any]:
        return await save(_valid({**entities.stored(name), "paused": paused}))

    @router.post(
        "/{name}/pause", summary="Pause deliveries", responses={404: {"description": "no such subscription"}}
    )
    async def pause(name: str) -> dict[str, Any]:
        return await set_paused(name, True)

    @router.post(
        "/{name}/resume",
        summary="Resume deliveries",
        responses={404: {"description": "no such subscription"}},
    )
    async def resume(name: str) -> dict[str, Any]:
        return await set_paused(name, False)

    @router.delete(
        "/{name}",
        status_code=204,
        summary="Delete a subscription (a tombstone on whale.subscriptions)",
        responses={404: {"description": "no such subscription"}},
    )
    async def delete_subscription(name: str) -> Response:
        entities.stored(name)
        await entities.remove(name)
        return Response(status_code=204)

    return router
