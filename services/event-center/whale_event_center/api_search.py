"""``GET /events``, ``GET /events/{source}/{id}`` and ``GET /traces/{correlation_id}`` over Elasticsearch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel

from whale.authz import Role, require
from whale.es.store import Store
from whale_event_center.errors import InvalidEvent
from whale_event_center.search import EventQuery, get_event, search, trace

MAX_PAGE = 1000
BAD: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed filter or cursor (problems name it)"}
}
MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "nothing indexed (yet)"}}
DOWN: dict[int | str, dict[str, Any]] = {503: {"description": "Elasticsearch unavailable; see Retry-After"}}


class Found(BaseModel):
    kind: str | None = None
    event: Any = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    time: str | None = None
    dlq: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None


class Page(BaseModel):
    events: list[Found]
    next: str | None = None


class TraceStep(Found):
    causationid: str | None = None
    depth: int = 0


class Trace(BaseModel):
    correlation_id: str
    events: list[TraceStep]


def parse_extensions(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, wanted = value.partition(":")
        if not sep or not name or not name.isalnum() or name.lower() != name:
            raise InvalidEvent(
                f"ext filter {value!r} must be 'name:value' with a lower-case extension name", field="ext"
            )
        out[name] = wanted
    return out


MAX_OFFSET = timedelta(hours=18)  # what Elasticsearch (java.time) accepts


def check_bound(name: str, value: datetime | None) -> None:
    """A time filter Elasticsearch can read: with an offset of at most 18 hours."""
    if value is None:
        return
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise InvalidEvent(f"{name} has a time-zone offset beyond ±18:00", field=name)


@dataclass(frozen=True, slots=True)
class SearchApi:
    """What the search routes use: the Elasticsearch store and the largest page."""

    store: Store
    max_size: int


def get_search_api(request: Request) -> SearchApi:
    """The app's :class:`SearchApi` (set by :func:`install`)."""
    api: SearchApi = request.app.state.search_api
    return api


router = APIRouter(tags=["search"])


@router.get(
    "/events",
    response_model=Page,
    responses={**BAD, **DOWN},
    summary="Search indexed events (newest first)",
    dependencies=[require(Role.viewer)],
)
async def list_events(
    api: Annotated[SearchApi, Depends(get_search_api)],
    type: Annotated[list[str] | None, Query(description="event type (repeatable)")] = None,
    source: Annotated[str | None, Query(description="exact source")] = None,
    source_prefix: Annotated[str | None, Query(description="source prefix")] = None,
    subject: str | None = None,
    since: Annotated[datetime | None, Query(description="time >= since (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="time < until (RFC 3339)")] = None,
    ext: Annotated[
        list[str] | None, Query(description="extension filter name:value, e.g. correlationid:abc")
    ] = None,
    correlationid: Annotated[str | None, Query(description="shorthand for ext=correlationid:<value>")] = None,
    q: Annotated[str | None, Query(max_length=1000, description="free text over data")] = None,
    topic: str | None = None,
    kind: Annotated[str | None, Query(description="event, dlq or unreadable")] = None,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size (capped by the setting)")] = 50,
    after: Annotated[
        str | None, Query(max_length=2000, description="'next' cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    extensions = parse_extensions(ext or [])
    for name, bound in (("since", since), ("until", until)):
        check_bound(name, bound)
    size = min(size, api.max_size)
    if correlationid is not None:
        extensions["correlationid"] = correlationid
    query = EventQuery(
        type=type or [], source=source, source_prefix=source_prefix, subject=subject, since=since, until=until,
        extensions=extensions, text=q, topic=topic, kind=kind, size=size, after=after,
    )  # fmt: skip
    return await search(api.store, query)


@router.get(
    "/events/{source:path}/{event_id}",
    response_model=Found,
    responses={**MISSING, **DOWN},
    summary="One event by source and id",
    dependencies=[require(Role.viewer)],
)
async def one_event(
    api: Annotated[SearchApi, Depends(get_search_api)], source: str, event_id: str
) -> dict[str, Any]:
    return await get_event(api.store, source, event_id)


@router.get(
    "/traces/{correlation_id}",
    response_model=Trace,
    responses={**MISSING, **DOWN},
    summary="Every event of a chain in causal order",
    dependencies=[require(Role.viewer)],
)
async def one_trace(
    api: Annotated[SearchApi, Depends(get_search_api)], correlation_id: str
) -> dict[str, Any]:
    return await trace(api.store, correlation_id)


def install(app: FastAPI, store: Store, max_size: int) -> None:
    """The search and trace routes on ``app``, over ``store``, pages of at most ``max_size``."""
    app.state.search_api = SearchApi(store, max_size)
    app.include_router(router)
