"""``/schemas``: register, read and list event types and their JSON Schema versions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field

from whale.authz import Identity, NotPermitted, Role, require
from whale_event_center.errors import Unavailable
from whale_event_center.registry import SchemaRegistry

MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown type or version"},
    503: {"description": "the registry is still loading; see Retry-After"},
}


class VersionOut(BaseModel):
    type: str
    version: int
    schema_: Any = None
    registered_at: str
    url: str

    model_config = {"populate_by_name": True, "serialize_by_alias": True}

    @classmethod
    def of(cls, registry: SchemaRegistry, item: Any) -> dict[str, Any]:
        return {
            "type": item.type,
            "version": item.version,
            "schema": item.schema,
            "registered_at": item.registered_at,
            "url": registry.schema_url(item.type, item.version),
        }


class TypeSummary(BaseModel):
    type: str
    latest: int
    versions: list[int]
    deprecated: dict[str, Any] | None = None


class DeprecateBody(BaseModel):
    reason: str = Field(default="", max_length=1000, description="why, shown in ingest warnings")


class DeprecatedOut(BaseModel):
    type: str
    deprecated: dict[str, Any]


class TypesOut(BaseModel):
    types: list[TypeSummary]


class TypeOut(BaseModel):
    type: str
    versions: list[dict[str, Any]]


Changed = Callable[[Identity, str, Any, Any], Awaitable[None]]
"""Told (actor, type, before, after) after a schema version was registered (the audit)."""


class RegisteredOut(BaseModel):
    type: str
    version: int
    created: bool
    url: str


async def _no_events(type_: str) -> int:
    return 0


@dataclass(frozen=True, slots=True)
class SchemasApi:
    """What the ``/schemas`` routes use: the registry, whether it is loaded, how many events of a type
    are in retention (deleting a type needs none), and who hears of a change (the audit)."""

    registry: SchemaRegistry
    ready: Callable[[], bool] = lambda: True
    events_in_retention: Callable[[str], Awaitable[int]] = _no_events
    on_change: Changed | None = None


def get_schemas_api(request: Request) -> SchemasApi:
    """The app's :class:`SchemasApi` (set by :func:`install`)."""
    api: SchemasApi = request.app.state.schemas_api
    return api


async def loaded(api: Annotated[SchemasApi, Depends(get_schemas_api)]) -> None:
    if not api.ready():
        raise Unavailable("the schema registry is still loading from Kafka; retry shortly")


router = APIRouter(prefix="/schemas", tags=["schemas"], dependencies=[Depends(loaded)])


@router.get(
    "",
    response_model=TypesOut,
    response_model_exclude_none=True,
    responses={503: MISSING[503]},
    summary="List registered event types",
    dependencies=[require(Role.viewer)],
)
async def list_types(api: Annotated[SchemasApi, Depends(get_schemas_api)]) -> dict[str, Any]:
    out = []
    for name in api.registry.types():
        versions = [v.version for v in api.registry.versions(name)]
        if versions:
            item: dict[str, Any] = {"type": name, "latest": versions[-1], "versions": versions}
            if api.registry.deprecation(name) is not None:
                item["deprecated"] = api.registry.deprecation(name)
            out.append(item)
    return {"types": out}


@router.get(
    "/{type_name}",
    response_model=TypeOut,
    responses=MISSING,
    summary="Every schema version of a type",
    dependencies=[require(Role.viewer)],
)
async def get_type(type_name: str, api: Annotated[SchemasApi, Depends(get_schemas_api)]) -> dict[str, Any]:
    api.registry.version(type_name)  # 404 when unknown
    return {
        "type": type_name,
        "versions": [VersionOut.of(api.registry, v) for v in api.registry.versions(type_name)],
    }


@router.get(
    "/{type_name}/versions/{number}",
    responses=MISSING,
    summary="One schema version (the dataschema URL)",
    dependencies=[require(Role.viewer)],
)
async def get_version(
    type_name: str, number: int, api: Annotated[SchemasApi, Depends(get_schemas_api)]
) -> dict[str, Any]:
    return VersionOut.of(api.registry, api.registry.version(type_name, number))


@router.put(
    "/{type_name}",
    response_model=RegisteredOut,
    summary="Register a new schema version (backward compatible unless force=true)",
    responses={
        400: {"description": "not a valid JSON Schema"},
        409: {"description": "not backward compatible: problems lists every break"},
        503: {"description": "Kafka did not acknowledge or the write was not read back in time"},
    },
)
async def put_type(
    type_name: str,
    schema: Annotated[dict[str, Any], Body(description="a JSON Schema (draft 2020-12)")],
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[SchemasApi, Depends(get_schemas_api)],
    force: Annotated[bool, Query(description="register even if not backward compatible (admin)")] = False,
) -> dict[str, Any]:
    if force and identity.role < Role.admin:
        raise NotPermitted(f"force=true needs the admin role ({identity.name!r} is {identity.role.name})")
    known = api.registry.versions(type_name)
    before = {"version": known[-1].version, "schema": known[-1].schema} if known else None
    item, created = await api.registry.register(type_name, schema, force=force)
    if created and api.on_change is not None:
        await api.on_change(identity, type_name, before, {"version": item.version, "schema": schema})
    return {
        "type": type_name,
        "version": item.version,
        "created": created,
        "url": api.registry.schema_url(type_name, item.version),
    }


@router.post(
    "/{type_name}/deprecate",
    response_model=DeprecatedOut,
    responses=MISSING,
    summary="Deprecate a type (its events are accepted with a warning; a new version revives it)",
    dependencies=[require(Role.admin)],
)
async def deprecate(
    type_name: str, api: Annotated[SchemasApi, Depends(get_schemas_api)], body: DeprecateBody | None = None
) -> dict[str, Any]:
    note = await api.registry.deprecate(type_name, body.reason if body else "")
    return {"type": type_name, "deprecated": note}


@router.delete(
    "/{type_name}",
    status_code=204,
    responses={**MISSING, 409: {"description": "not deprecated, or events of the type are in retention"}},
    summary="Delete a deprecated type that has no event in retention",
    dependencies=[require(Role.admin)],
)
async def delete_type(type_name: str, api: Annotated[SchemasApi, Depends(get_schemas_api)]) -> Response:
    await api.registry.delete(type_name, api.events_in_retention)
    return Response(status_code=204)


def install(
    app: FastAPI,
    registry: SchemaRegistry,
    ready: Callable[[], bool] = lambda: True,
    events_in_retention: Callable[[str], Awaitable[int]] = _no_events,
    on_change: Changed | None = None,
) -> None:
    """The ``/schemas`` routes on ``app``, over ``registry``."""
    app.state.schemas_api = SchemasApi(registry, ready, events_in_retention, on_change)
    app.include_router(router)
