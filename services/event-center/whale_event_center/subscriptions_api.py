"""The ``/subscriptions`` API: list, read, save (validated), pause, resume and delete push subscriptions.

Subscriptions live on the compacted ``whale.subscriptions`` topic (key = subscription id, a
``whale.subscription.saved`` event whose data is the whole subscription, built by the shared
:meth:`whale.subscriptions.Subscription.to_record`, the same record ``whale subscriptions apply``
writes); every dispatcher replica follows that topic and applies changes live. A save is validated
with the shared model (endpoint, limits, the filter through :mod:`whale.matching`) and answered once
Kafka acknowledged it and this process' view shows it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import ValidationError

from whale import topics
from whale.compacted import CompactedView, delete, put
from whale.errors import DeliveryError
from whale.producer import EventProducer
from whale.subscriptions import Subscription
from whale_event_center.errors import EventCenterError, NotFound, Problem, Unavailable

VISIBLE_WITHIN = 10.0


class InvalidSubscription(EventCenterError):
    """The subscription breaks the model or its filter the matching language (400)."""

    status = 400
    code = "invalid_subscription"


def _current(subscriptions: CompactedView, name: str) -> dict[str, Any] | None:
    record = subscriptions.get(name)
    return record.data if record is not None and isinstance(record.data, dict) else None


def _valid(doc: dict[str, Any]) -> Subscription:
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

    async def visible(name: str, state: dict[str, Any] | None) -> None:
        def seen(items: dict[str, Any]) -> bool:
            record = items.get(name)
            if state is None:
                return record is None
            return record is not None and record.data == state

        await asyncio.to_thread(subscriptions.wait_for, seen, VISIBLE_WITHIN)

    async def save(sub: Subscription) -> dict[str, Any]:
        try:
            await put(producer, topics.SUBSCRIPTIONS, sub.id, sub.to_record())
        except DeliveryError as exc:
            raise Unavailable(f"the subscription was not saved: {exc}") from None
        state = sub.model_dump(mode="json")
        await visible(sub.id, state)
        return state

    def stored(name: str) -> dict[str, Any]:
        current = _current(subscriptions, name)
        if current is None:
            raise NotFound(f"no subscription {name!r}", field="name")
        return current

    @router.get("", summary="Every push subscription")
    async def list_subscriptions() -> dict[str, Any]:
        items = subscriptions.items()
        docs = [items[k].data for k in sorted(items) if isinstance(items[k].data, dict)]
        return {"subscriptions": docs}

    @router.get(
        "/{name}", summary="One subscription", responses={404: {"description": "no such subscription"}}
    )
    async def get_subscription(name: str) -> dict[str, Any]:
        return stored(name)

    @router.put(
        "/{name}",
        summary="Create or replace a subscription (validated, the filter too)",
        responses={
            400: {"description": "invalid: problems lists each field and why"},
            503: {"description": "Kafka did not acknowledge; nothing was saved"},
        },
    )
    async def put_subscription(
        name: str,
        doc: Annotated[dict[str, Any], Body(description="the subscription (id optional)")],
        response: Response,
    ) -> dict[str, Any]:
        if "id" in doc and doc["id"] != name:
            raise InvalidSubscription(
                f"the body's id {doc['id']!r} differs from the path's {name!r}", field="id"
            )
        existed = _current(subscriptions, name) is not None
        state = await save(_valid({**doc, "id": name}))
        response.status_code = 200 if existed else 201
        return state

    async def set_paused(name: str, paused: bool) -> dict[str, Any]:
        current = stored(name)
        return await save(_valid({**current, "paused": paused}))

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
        stored(name)
        try:
            await delete(producer, topics.SUBSCRIPTIONS, name)
        except DeliveryError as exc:
            raise Unavailable(f"the subscription was not deleted: {exc}") from None
        await visible(name, None)
        return Response(status_code=204)

    return router
