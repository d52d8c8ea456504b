"""``/dlq``: dead letters (as indexed in Elasticsearch) and their redrive (:mod:`.redrive`).

* ``GET /dlq?reason=&topic=&group=&since=&until=&size=&after=`` -> ``{"dead_letters": [letter],
  "next"}``; a letter is ``{"id", "kind", "reason", "topic", "partition", "offset", "group", "time",
  "event"}`` (``topic/partition/offset/group``: where it came from and who gave up on it);
* ``GET /dlq/{id}`` -> one letter;
* ``POST /dlq/{id}/redrive`` -> 202 ``{"id", "event_id", "topic"}`` once Kafka acknowledged; 409
  when it was redriven already;
* ``POST /dlq/redrive`` ``{"ids": [...]}`` or a filter ``{"reason", "topic", "group", "since",
  "until"}`` (or ``{"all": true}``), at most ``limit`` letters -> 202 ``{"redriven": [{"id",
  "event_id", "topic"}], "skipped": [{"id", "why"}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from whale import audit
from whale.authz import Identity, Role, require
from whale.errors import InvalidRequest
from whale.es.store import Store
from whale.producer import EventProducer
from whale_event_center.api_search import check_bound
from whale_event_center.errors import Conflict, NotFound
from whale_event_center.redrive import dead_letter, plan, redriven_already
from whale_event_center.search import SORT, decode_cursor, encode_cursor


class Filter(BaseModel):
    reason: str | None = Field(default=None, max_length=1000, description="words of the reason (a phrase)")
    topic: str | None = Field(default=None, max_length=300, description="the topic it came from")
    group: str | None = Field(default=None, max_length=300, description="the consumer group that gave up")
    since: datetime | None = None
    until: datetime | None = None


class RedriveBody(Filter):
    ids: list[str] = Field(default_factory=list, max_length=1000)
    all: bool = Field(default=False, description="every dead letter (up to limit) when no filter is given")
    limit: int = Field(default=100, ge=1, le=1000)


def letters_query(f: Filter, size: int, after: str | None = None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"term": {"kind": "dlq"}}]
    if f.topic:
        filters.append({"term": {"dlq.topic": f.topic}})
    if f.group:
        filters.append({"term": {"dlq.group": f.group}})
    if f.since or f.until:
        bounds = {k: v.isoformat() for k, v in (("gte", f.since), ("lt", f.until)) if v is not None}
        filters.append({"range": {"time": bounds}})
    must = [{"match_phrase": {"dlq.reason": f.reason}}] if f.reason else []
    body: dict[str, Any] = {"size": size, "sort": SORT, "query": {"bool": {"filter": filters, "must": must}}}
    if after:
        body["search_after"] = decode_cursor(after)
    return body


@dataclass(frozen=True, slots=True)
class DlqApi:
    """What the ``/dlq`` routes use: the producer, the Elasticsearch store the dead letters are read
    from, the topics a redriven event goes back to, and the letters redriven through this replica
    (before the redriven event is indexed)."""

    producer: EventProducer
    store: Store
    ingest_topic: str
    events_topic: str
    done: set[str] = field(default_factory=set)

    async def one(self, letter_id: str) -> dict[str, Any]:
        query = {"size": 1, "query": {"term": {"doc_id": letter_id}}}
        hits = (await self.store.search(query))["hits"]["hits"]
        if not hits or hits[0].get("_source", {}).get("kind") != "dlq":
            raise NotFound(f"no dead letter {letter_id!r} is indexed", field="id")
        return dead_letter(hits[0])

    async def redrive(self, letter: dict[str, Any], identity: Identity) -> dict[str, Any]:
        if letter["id"] in self.done or await redriven_already(self.store, letter["id"]):
            raise Conflict(f"dead letter {letter['id']!r} was redriven already", field="id")
        step = plan(letter, ingest_topic=self.ingest_topic, events_topic=self.events_topic)
        self.done.add(step.dead_letter)
        try:
            await self.producer.send(step.topic, step.event, key=step.key)
        except BaseException:
            self.done.discard(step.dead_letter)
            raise
        await audit.record(self.producer, identity, "dlq", "redriven", step.dead_letter, None,
                           {"event_id": step.event.id, "topic": step.topic})  # fmt: skip
        return {"id": step.dead_letter, "event_id": step.event.id, "topic": step.topic}


def get_dlq_api(request: Request) -> DlqApi:
    """The app's :class:`DlqApi` (set by :func:`install`)."""
    api: DlqApi = request.app.state.dlq_api
    return api


Api = Annotated[DlqApi, Depends(get_dlq_api)]
router = APIRouter(tags=["dead letters"])


@router.get("/dlq", summary="Dead letters, newest first", dependencies=[require(Role.viewer)])
async def list_letters(
    api: Api,
    reason: str | None = None, topic: str | None = None, group: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
    size: Annotated[int, Query(ge=1, le=1000)] = 50,
    after: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:  # fmt: skip
    for name, bound in (("since", since), ("until", until)):
        check_bound(name, bound)
    f = Filter(reason=reason, topic=topic, group=group, since=since, until=until)
    hits = (await api.store.search(letters_query(f, size, after))).get("hits", {}).get("hits", [])
    following = encode_cursor(hits[-1]["sort"]) if len(hits) == size and hits else None
    return {"dead_letters": [dead_letter(h) for h in hits], "next": following}


@router.get("/dlq/{letter_id}", summary="One dead letter", dependencies=[require(Role.viewer)])
async def show_letter(api: Api, letter_id: str) -> dict[str, Any]:
    return await api.one(letter_id)


@router.post("/dlq/{letter_id}/redrive", status_code=202, summary="Redrive one dead letter",
             responses={404: {"description": "no such dead letter"}, 409: {"description": "redriven already"}})  # fmt: skip
async def redrive_one(
    api: Api, letter_id: str, identity: Annotated[Identity, require(Role.operator)]
) -> dict[str, Any]:
    return await api.redrive(await api.one(letter_id), identity)


@router.post("/dlq/redrive", status_code=202, summary="Redrive dead letters by id or by filter")
async def redrive_many(
    api: Api, body: RedriveBody, identity: Annotated[Identity, require(Role.operator)]
) -> dict[str, Any]:
    for name, bound in (("since", body.since), ("until", body.until)):
        check_bound(name, bound)
    filtered = any(getattr(body, n) for n in ("reason", "topic", "group", "since", "until"))
    if not body.ids and not filtered and not body.all:
        raise InvalidRequest(
            "name ids, a filter (reason, topic, group, since, until) or all: true", field="ids"
        )
    if body.ids:
        letters = []
        for letter_id in body.ids[: body.limit]:
            letters.append(await api.one(letter_id))
    else:
        hits = (await api.store.search(letters_query(body, body.limit)))["hits"]["hits"]
        letters = [dead_letter(h) for h in reversed(hits)]  # oldest first: each key's order kept
    redriven, skipped = [], []
    for letter in letters:
        try:
            redriven.append(await api.redrive(letter, identity))
        except Conflict as exc:
            skipped.append({"id": letter["id"], "why": exc.message})
    return {"redriven": redriven, "skipped": skipped}


def install(
    app: FastAPI, producer: EventProducer, store: Store, *, ingest_topic: str, events_topic: str
) -> None:
    """The ``/dlq`` routes on ``app``, over the dead letters indexed in ``store``."""
    app.state.dlq_api = DlqApi(producer, store, ingest_topic, events_topic)
    app.include_router(router)
