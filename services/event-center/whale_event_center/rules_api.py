"""The ``/rules`` API: list, read, save (validated, versioned) and delete rules.

Rules live on the compacted ``whale.rules`` topic (key = rule id, a ``whale.rule.saved`` event whose
data is the whole rule); every rule-engine worker follows that topic and applies changes live. A
save is validated completely (:func:`whale.rules.model.validate_rule`: match language, templates, target
and params against the executors' catalogue, field paths against the registered schema), gets the
next version number, and is answered once Kafka acknowledged it and this process' view shows it.
``If-Match: <version>`` makes a save or delete conditional on the current version.

History (:mod:`whale_event_center.rule_history`): ``GET /rules/{id}/versions[/{n}]`` lists the saved
versions from the audit events in Elasticsearch, ``GET /rules/{id}/diff?from=N&to=M`` compares two,
and ``POST /rules/{id}/rollback`` re-saves an earlier version as the next one through the same save
as PUT (validated against today's catalogue and schemas), audited as ``whale.audit.rule.rolled_back``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from whale import audit, topics
from whale.authz import Identity, Role, require
from whale.compacted import CompactedView
from whale.producer import EventProducer
from whale.rules.files import LoadReport, load_rules_dir
from whale.rules.model import RULE_ID, Rule, RuleError, validate_rule
from whale.rules.ruleset import origin_of
from whale_event_center import rule_history as history
from whale_event_center.entity_api import INVALID, NOT_SAVED, Document, Entities, check_body_id
from whale_event_center.errors import EventCenterError


class InvalidRule(EventCenterError, status=400, code="invalid_rule"):
    """The rule breaks the rule language, its target's catalogue or its event type's schema (400)."""


class VersionMismatch(EventCenterError, status=412, code="version_mismatch"):
    """``If-Match`` names another version than the current one (412)."""


def _check_if_match(if_match: str | None, current: Document | None, rule_id: str) -> None:
    if if_match is None:
        return
    have = str(current.get("version")) if current is not None else "none"
    if if_match.strip().strip('"') != have:
        raise VersionMismatch(f"rule {rule_id!r} is at version {have}, not {if_match}", field="If-Match")


def _valid(doc: Document, catalog: CompactedView, schemas: CompactedView) -> Rule:
    try:
        return validate_rule(doc, catalog, schemas)
    except RuleError as exc:
        raise InvalidRule(exc.message, exc.problems) from None


class Rollback(BaseModel):
    """``POST /rules/{id}/rollback``: the version to restore."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="the stored version whose document becomes the next version")


MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "no such rule or version stored"}}


def in_force(saved: list[Document], rules_dir: Path | None) -> list[Document]:
    """The rules the workers apply: the saved ones (``whale.rules``) and the rules directory's (read
    now), each with its origin (:func:`whale.rules.ruleset.origin_of`); a saved rule wins."""
    report = load_rules_dir(rules_dir) if rules_dir is not None and rules_dir.is_dir() else LoadReport()
    by_id = {str(doc.get("id")): doc for doc in saved}
    out = []
    for rule_id in sorted({*by_id, *report.rules}):
        doc = by_id[rule_id] if rule_id in by_id else report.rules[rule_id].document()
        out.append({**doc, **origin_of(rule_id, in_topic=rule_id in by_id, files=report.origins)})
    return out


def rule_body(*, id_required: bool) -> dict[str, Any]:
    """The OpenAPI request body of a rule document, as strict as :class:`whale.rules.Rule`."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["id", "match", "target"] if id_required else ["match", "target"],
        "properties": {
            "id": {"type": "string", "pattern": RULE_ID.pattern},
            "version": {"type": "integer", "minimum": 1},
            "enabled": {"type": "boolean"},
            "description": {"type": "string"},
            "match": {"type": "object", "minProperties": 1},
            "target": {"type": "object", "minProperties": 1},
            "params": {"type": "object"},
            "throttle": {"type": ["object", "null"]},
            "on": {
                "oneOf": [
                    {"enum": ["firing", "updated", "resolved"]},
                    {"type": "array", "items": {"enum": ["firing", "updated", "resolved"]}, "minItems": 1},
                ]
            },
            "changed": {
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                ]
            },
        },
        "additionalProperties": False,
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@dataclass(frozen=True, slots=True)
class RulesApi:
    """What the ``/rules`` routes use: the producer, the rules as entities, the views validation reads
    (catalogue, schemas) and the audit trail the history is read from."""

    producer: EventProducer
    rules: CompactedView
    catalog: CompactedView
    schemas: CompactedView
    store: history.Searchable
    entities: Entities
    rules_dir: Path | None = None

    async def save(
        self,
        rule_id: str,
        doc: Document,
        identity: Identity,
        if_match: str | None,
        rolled_back_from: int | None = None,
    ) -> tuple[Rule, bool]:
        """Validate and write ``doc`` as the rule's next version, then audit it; (rule, created)."""
        current = self.entities.current(rule_id)
        _check_if_match(if_match, current, rule_id)
        version = int(current.get("version", 0)) + 1 if current is not None else 1
        rule = _valid({**doc, "id": rule_id, "version": version}, self.catalog, self.schemas)
        await self.entities.write(rule_id, rule.to_event(), lambda data: data.get("version") == version)
        if rolled_back_from is None:
            await audit.record(self.producer, identity, "rule", "saved", rule_id, current, rule.document())
        else:
            extra = {"rolled_back_from": rolled_back_from}
            after = rule.document()
            await audit.record(self.producer, identity, "rule", "rolled_back", rule_id, current, after, extra)
        return rule, current is None

    async def stored_versions(self, rule_id: str) -> list[history.Version]:
        return await history.versions(self.store, rule_id, self.rules.get(rule_id))


def get_rules_api(request: Request) -> RulesApi:
    """The app's :class:`RulesApi` (set by :func:`install`)."""
    api: RulesApi = request.app.state.rules_api
    return api


router = APIRouter(prefix="/rules", tags=["rules"])


@router.get(
    "",
    summary="Every rule in force: saved ones (whale.rules) and the rules directory's, with their origin",
    dependencies=[require(Role.viewer)],
)
async def list_rules(api: Annotated[RulesApi, Depends(get_rules_api)]) -> dict[str, Any]:
    return {"rules": await asyncio.to_thread(in_force, api.entities.documents(), api.rules_dir)}


@router.post(
    "/validate",
    summary="Validate a rule without saving it",
    responses={400: INVALID},
    openapi_extra=rule_body(id_required=True),
    dependencies=[require(Role.viewer)],
)
async def validate(
    doc: Annotated[dict[str, Any], Body(description="a rule document")],
    api: Annotated[RulesApi, Depends(get_rules_api)],
) -> dict[str, Any]:
    rule = _valid(doc, api.catalog, api.schemas)
    return {"valid": True, "rule": rule.document(), "warnings": rule.warnings}


@router.get(
    "/{rule_id}",
    summary="One rule",
    responses={404: {"description": "no such rule"}},
    dependencies=[require(Role.viewer)],
)
async def get_rule(rule_id: str, api: Annotated[RulesApi, Depends(get_rules_api)]) -> dict[str, Any]:
    return api.entities.stored(rule_id)


@router.put(
    "/{rule_id}",
    summary="Create or replace a rule (validated; the server assigns the next version)",
    responses={
        400: INVALID,
        412: {"description": "If-Match names another version"},
        503: NOT_SAVED,
    },
    openapi_extra=rule_body(id_required=False),
)
async def put_rule(
    rule_id: str,
    doc: Annotated[dict[str, Any], Body(description="the rule (id optional, version ignored)")],
    response: Response,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[RulesApi, Depends(get_rules_api)],
    if_match: Annotated[str | None, Header(description="the version this save replaces")] = None,
) -> dict[str, Any]:
    check_body_id(doc, rule_id, InvalidRule)
    rule, created = await api.save(rule_id, doc, identity, if_match)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = f'"{rule.version}"'
    return {"rule": rule.document(), "warnings": rule.warnings}


@router.delete(
    "/{rule_id}",
    status_code=204,
    summary="Delete a rule (a tombstone on whale.rules)",
    responses={404: {"description": "no such rule"}, 412: {"description": "If-Match mismatch"}},
)
async def delete_rule(
    rule_id: str,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[RulesApi, Depends(get_rules_api)],
    if_match: Annotated[str | None, Header(description="the version this delete removes")] = None,
) -> Response:
    before = api.entities.stored(rule_id)
    _check_if_match(if_match, before, rule_id)
    await api.entities.remove(rule_id)
    await audit.record(api.producer, identity, "rule", "deleted", rule_id, before, None)
    return Response(status_code=204)


@router.get(
    "/{rule_id}/versions",
    summary="Every saved version of a rule, newest first (from the audit trail)",
    responses=MISSING,
    dependencies=[require(Role.viewer)],
)
async def list_versions(rule_id: str, api: Annotated[RulesApi, Depends(get_rules_api)]) -> dict[str, Any]:
    return {"rule_id": rule_id, "versions": await api.stored_versions(rule_id)}


@router.get(
    "/{rule_id}/versions/{number}",
    summary="One saved version of a rule",
    responses=MISSING,
    dependencies=[require(Role.viewer)],
)
async def one_version(
    rule_id: str, number: int, api: Annotated[RulesApi, Depends(get_rules_api)]
) -> history.Version:
    return history.pick(await api.stored_versions(rule_id), rule_id, number, field="number")


@router.get(
    "/{rule_id}/diff",
    summary="What changed between two versions: JSON-Patch-like changes and a unified YAML diff",
    responses=MISSING,
    dependencies=[require(Role.viewer)],
)
async def diff(
    rule_id: str,
    from_: Annotated[int, Query(alias="from", ge=1, description="the older version")],
    to: Annotated[int, Query(ge=1, description="the newer version")],
    api: Annotated[RulesApi, Depends(get_rules_api)],
) -> dict[str, Any]:
    found = await api.stored_versions(rule_id)
    old = history.pick(found, rule_id, from_, field="from")
    new = history.pick(found, rule_id, to, field="to")
    return {
        "rule_id": rule_id,
        "from": from_,
        "to": to,
        "changes": history.changes(old["rule"], new["rule"]),
        "unified": history.unified(old, new, rule_id),
    }


@router.post(
    "/{rule_id}/rollback",
    summary="Re-save an earlier version as the rule's next version (validated and audited like PUT)",
    responses={**MISSING, 400: INVALID, 409: {"description": "the version's secrets were redacted"}},
)
async def rollback(
    rule_id: str,
    body: Rollback,
    response: Response,
    identity: Annotated[Identity, require(Role.author)],
    api: Annotated[RulesApi, Depends(get_rules_api)],
    if_match: Annotated[str | None, Header(description="the version this rollback replaces")] = None,
) -> dict[str, Any]:
    old = history.pick(await api.stored_versions(rule_id), rule_id, body.version)
    history.restorable(old["rule"])
    rule, created = await api.save(rule_id, old["rule"], identity, if_match, rolled_back_from=body.version)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = f'"{rule.version}"'
    return {"rule": rule.document(), "warnings": rule.warnings, "rolled_back_from": body.version}


def install(
    app: FastAPI,
    producer: EventProducer,
    rules: CompactedView,
    catalog: CompactedView,
    schemas: CompactedView,
    *,
    store: history.Searchable,
    rules_dir: Path | None = None,
) -> None:
    """The ``/rules`` routes on ``app``, over the ``whale.rules`` view (and the rules directory's)."""
    entities = Entities(producer, rules, topics.RULES, noun="rule", key_field="rule_id")
    app.state.rules_api = RulesApi(producer, rules, catalog, schemas, store, entities, rules_dir)
    app.include_router(router)
