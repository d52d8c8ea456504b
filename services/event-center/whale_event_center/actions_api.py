"""``POST /actions/{name}/run``: a person runs a catalogued action or workflow.

The target is looked up in the executors' catalogue (the compacted ``whale.catalog`` view: one
record per pool), the params are checked against its ``params_schema`` (400 naming each
``params.<path>``), and a ``whale.action.requested`` is written on the pool's actions topic with the
caller as ``requested_by`` (and, given a ``cause``, linked to that stored event's chain); 202 once
Kafka acknowledged it. The chat adapter's command aliases and the console use this one route, so
roles and audit have one path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from whale import runs as run_ids
from whale import topics
from whale.authz import Identity, Role, require
from whale.cloudevent import CloudEvent
from whale.correlation import CAUSATION_ID, CORRELATION_ID
from whale.errors import InvalidRequest, WhaleError
from whale.es.store import Store
from whale.rules.references import find_target, params_problems
from whale_event_center.errors import NotFound
from whale_event_center.runs_api import REQUESTED, _by_id

API_SOURCE = "whale/actions-api"


class RunBody(BaseModel):
    params: dict[str, Any] = Field(default_factory=dict, description="checked against its params_schema")
    cause: str | None = Field(default=None, min_length=1, max_length=500, description="a stored event's id")
    pool: str | None = Field(default=None, min_length=1, max_length=200, description="needed when ambiguous")
    kind: Literal["action", "workflow"] | None = Field(default=None, description="default: either")
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=400, description="a repeat is answered with the recorded run"
    )


def locate(catalog: Mapping[str, Any], name: str, pool: str | None, kind: str | None) -> tuple[str, str, Any]:
    """(pool, kind, catalogue entry) of ``name``; 404 unknown, 400 when several pools offer it."""
    found = []
    for pool_name, event in sorted(catalog.items()):
        doc = getattr(event, "data", None)
        if (pool is not None and pool_name != pool) or not isinstance(doc, Mapping):
            continue
        for k in (kind,) if kind else ("action", "workflow"):
            entry = find_target(doc, k, name)
            if entry is not None:
                found.append((pool_name, k, entry))
    if not found:
        where = f" in pool {pool!r}" if pool else ""
        raise NotFound(f"no catalogued action or workflow {name!r}{where}", field="name")
    if len(found) > 1:
        offered = ", ".join(f"{p} ({k})" for p, k, _ in found)
        raise InvalidRequest(
            f"{name!r} is offered by {offered}: name the pool (and kind)",
            [{"field": "pool", "message": f"ambiguous: {offered}"}],
        )
    return found[0]


@dataclass(frozen=True, slots=True)
class ActionsApi:
    """What ``POST /actions/{name}/run`` uses: the producer, the catalogue view, the event store."""

    producer: Any
    catalog: Any
    store: Store | None = None


def get_actions_api(request: Request) -> ActionsApi:
    """The app's :class:`ActionsApi` (set by :func:`install`)."""
    api: ActionsApi = request.app.state.actions_api
    return api


router = APIRouter(tags=["actions"])


@router.post(
    "/actions/{name}/run",
    status_code=202,
    summary="Run a catalogued action or workflow (202 once Kafka acknowledged the request)",
    responses={
        400: {"description": "params break the params_schema (problems name params.<path>), "
              "ambiguous name, or an unknown cause"},
        404: {"description": "no such catalogued action or workflow"},
    },
)  # fmt: skip
async def run(
    name: str,
    body: RunBody,
    identity: Annotated[Identity, require(Role.operator)],
    api: Annotated[ActionsApi, Depends(get_actions_api)],
) -> dict[str, Any]:
    pool, kind, entry = locate(api.catalog.items(), name, body.pool, body.kind)
    schema = entry.get("params_schema")
    if isinstance(schema, Mapping) and schema:
        problems = params_problems(body.params, schema, templated=False)
        if problems:
            raise InvalidRequest(f"{name}: {problems[0]['field']} {problems[0]['message']}", problems)
    ext: dict[str, Any] = {}
    if body.cause is not None:
        ext = {CAUSATION_ID: body.cause, CORRELATION_ID: await _chain_of(api.store, body.cause)}
    key = body.idempotency_key or f"api/{identity.name}/{uuid.uuid4().hex}"
    data = {
        "target": {"kind": kind, "name": name, "pool": pool},
        "params": body.params,
        "idempotency_key": key,
        "requested_by": identity.actor(),
        "cause": body.cause,
    }
    event = CloudEvent.create(type=REQUESTED, source=API_SOURCE, subject=name, data=data, **ext)
    await api.producer.send(topics.actions_topic(pool), event, key=key)
    return {
        "request_id": event.id,
        "run_id": run_ids.run_id(kind, f"{pool}/{key}"),
        "target": data["target"],
        "requested_by": identity.actor(),
        "status": "requested",
    }


def install(app: FastAPI, producer: Any, catalog: Any, store: Store | None = None) -> None:
    """``POST /actions/{name}/run`` on ``app``, over the ``whale.catalog`` view."""
    app.state.actions_api = ActionsApi(producer, catalog, store)
    app.include_router(router)


async def _chain_of(store: Store | None, cause: str) -> str:
    """The correlation id of the stored event ``cause`` (400 when it is not stored)."""
    found = None
    if store is not None:
        try:
            found = await _by_id(store, cause)
        except WhaleError:
            found = None
    event = found.get("event") if isinstance(found, dict) else None
    if not isinstance(event, dict):
        raise InvalidRequest(
            f"cause {cause!r} is not a stored event (or Elasticsearch cannot say)",
            [{"field": "cause", "message": "no stored event with this id"}],
        )
    return str(event.get(CORRELATION_ID) or event.get("id") or cause)
