"""``POST /replays``: stored events re-enter the bus as new events linked to the originals.

The events stored from ``whale.events`` that match the filter (time window, types, source, subject,
extensions, free text; platform types ``whale.*`` only when ``type`` names them) are read from
Elasticsearch oldest first and written to ``whale.events`` one after the other, each acknowledged
before the next, with the original's partition key: the order of each key is kept. Each replayed
event is the original with a new ``id`` and the extensions ``replayof`` (the original's id),
``replayid`` and, in dry-run mode, ``replaymode: dry``; its chain is the replay
(``correlationid`` = the replay id), so ``whale events trace <replay id>`` shows everything the
replay caused. A dry-run event is matched by the rule engine, which records what it would request
(``whale.rule.dryrun`` on ``whale.results``) and requests nothing; the to-do stage and the
executors' approval reader ignore it.

Request ``{"since", "until"?, "type"?: [..], "source"?, "subject"?, "ext"?: {name: value}, "q"?,
"mode": "live"|"dry", "limit": 1..10000 (default 1000)}``; answer 202 ``{"replay_id", "mode",
"replayed", "more": bool, "events": [{"original", "id", "type"}] (the first 100)}``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from whale import audit
from whale.authz import Identity, Role, require
from whale.cloudevent import CloudEvent
from whale.correlation import CORRELATION_ID
from whale.errors import EventError
from whale.es.store import Store
from whale.producer import EventProducer
from whale_event_center.api_search import check_bound
from whale_event_center.search import EventQuery

REPLAY_OF = "replayof"
REPLAY_ID = "replayid"
REPLAY_MODE = "replaymode"
PAGE = 500
SHOWN = 100


class ReplayBody(BaseModel):
    since: datetime = Field(description="events stored with time >= since (RFC 3339)")
    until: datetime | None = Field(default=None, description="time < until (default: now)")
    type: list[str] = Field(default_factory=list, description="event types (whale.* only when named)")
    source: str | None = None
    subject: str | None = None
    ext: dict[str, str] = Field(default_factory=dict, description="extension filters name -> value")
    q: str | None = Field(default=None, max_length=1000, description="free text over data")
    mode: Literal["live", "dry"] = "dry"
    limit: int = Field(default=1000, ge=1, le=10_000)


def replayed(original: CloudEvent, replay_id: str, mode: str) -> CloudEvent:
    extensions = {
        **original.extensions,
        REPLAY_OF: original.id,
        REPLAY_ID: replay_id,
        CORRELATION_ID: replay_id,
    }
    extensions.pop("causationid", None)
    if mode == "dry":
        extensions[REPLAY_MODE] = "dry"
    return original.model_copy(
        update={"id": f"{replay_id}-{uuid.uuid4().hex[:12]}", "extensions": extensions}
    )


@dataclass(frozen=True, slots=True)
class ReplayApi:
    """What ``POST /replays`` uses: the producer, the Elasticsearch store the events are read from, and
    the topic they are read from and written back to."""

    producer: EventProducer
    store: Store
    events_topic: str


def get_replay_api(request: Request) -> ReplayApi:
    """The app's :class:`ReplayApi` (set by :func:`install`)."""
    api: ReplayApi = request.app.state.replay_api
    return api


router = APIRouter(tags=["replay"])


@router.post("/replays", status_code=202, summary="Replay stored events (live or dry-run)")
async def replay(
    api: Annotated[ReplayApi, Depends(get_replay_api)],
    body: ReplayBody,
    identity: Annotated[Identity, require(Role.operator)],
) -> dict[str, Any]:
    for name, bound in (("since", body.since), ("until", body.until)):
        check_bound(name, bound)
    replay_id = f"replay-{uuid.uuid4().hex[:16]}"
    query = EventQuery(
        type=body.type, source=body.source, subject=body.subject, since=body.since, until=body.until,
        extensions=body.ext, text=body.q, topic=api.events_topic, kind="event", size=PAGE,
    )  # fmt: skip
    es = query.to_es()
    es["sort"] = [{"time": {"order": "asc"}}, {"doc_id": {"order": "asc"}}]
    es["_source"] = {"includes": ["raw", "type"]}
    if not body.type:
        es["query"]["bool"]["must_not"] = [{"prefix": {"type": "whale."}}]
    sent: list[dict[str, Any]] = []
    count, more = 0, False
    while True:
        hits = (await api.store.search(es)).get("hits", {}).get("hits", [])
        for hit in hits:
            if count >= body.limit:
                more = True
                break
            try:
                original = CloudEvent.from_structured(json.loads(hit["_source"]["raw"]))
            except (KeyError, ValueError, EventError):
                continue  # stored as text only (nested too deeply): not replayable
            event = replayed(original, replay_id, body.mode)
            await api.producer.send(api.events_topic, event)
            count += 1
            if len(sent) < SHOWN:
                sent.append({"original": original.id, "id": event.id, "type": event.type})
        if more or len(hits) < PAGE:
            break
        es["search_after"] = hits[-1]["sort"]
    summary = {
        "mode": body.mode,
        "replayed": count,
        "filter": body.model_dump(mode="json", exclude={"mode"}),
    }
    await audit.record(api.producer, identity, "events", "replayed", replay_id, None, summary)
    return {"replay_id": replay_id, "mode": body.mode, "replayed": count, "more": more, "events": sent}


def install(app: FastAPI, producer: EventProducer, store: Store, *, events_topic: str) -> None:
    """``POST /replays`` on ``app``, over the events indexed in ``store``."""
    app.state.replay_api = ReplayApi(producer, store, events_topic)
    app.include_router(router)
