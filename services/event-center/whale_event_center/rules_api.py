"""The ``/rules`` API: list, read, save (validated, versioned) and delete rules.

Rules live on the compacted ``whale.rules`` topic (key = rule id, a ``whale.rule.saved`` event whose
data is the whole rule); every rule-engine worker follows that topic and applies changes live. A
save is validated completely (:func:`whale.rules.validate_rule`: match language, templates, target
and params against the executors' catalogue, field paths against the registered schema), gets the
next version number, and is answered once Kafka acknowledged it and this process' view shows it.
``If-Match: <version>`` makes a save or delete conditional on the current version.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response

from whale import topics
from whale.compacted import CompactedView, delete, put
from whale.errors import DeliveryError
from whale.producer import EventProducer
from whale.rules import Rule, RuleError, validate_rule
from whale_event_center.errors import EventCenterError, NotFound, Unavailable

VISIBLE_WITHIN = 10.0


class InvalidRule(EventCenterError):
    """The rule breaks the rule language, its target's catalogue or its event type's schema (400)."""

    status = 400
    code = "invalid_rule"


class VersionMismatch(EventCenterError):
    """``If-Match`` names another version than the current one (412)."""

    status = 412
    code = "version_mismatch"


def _current(rules: CompactedView, rule_id: str) -> dict[str, Any] | None:
    record = rules.get(rule_id)
    return record.data if record is not None and isinstance(record.data, dict) else None


def _check_if_match(if_match: str | None, current: dict[str, Any] | None, rule_id: str) -> None:
    if if_match is None:
        return
    have = str(current.get("version")) if current is not None else "none"
    if if_match.strip().strip('"') != have:
        raise VersionMismatch(f"rule {rule_id!r} is at version {have}, not {if_match}", field="If-Match")


def _valid(doc: dict[str, Any], catalog: CompactedView, schemas: CompactedView) -> Rule:
    try:
        return validate_rule(doc, catalog, schemas)
    except RuleError as exc:
        raise InvalidRule(exc.message, exc.problems) from None


def build_router(
    producer: EventProducer, rules: CompactedView, catalog: CompactedView, schemas: CompactedView
) -> APIRouter:
    router = APIRouter(prefix="/rules", tags=["rules"])

    async def visible(rule_id: str, version: int | None) -> None:
        def seen(items: dict[str, Any]) -> bool:
            record = items.get(rule_id)
            if version is None:
                return record is None
            return (
                record is not None and isinstance(record.data, dict) and record.data.get("version") == version
            )

        await asyncio.to_thread(rules.wait_for, seen, VISIBLE_WITHIN)

    @router.get("", summary="Every rule (latest version)")
    async def list_rules() -> dict[str, Any]:
        items = rules.items()
        docs = [items[k].data for k in sorted(items) if isinstance(items[k].data, dict)]
        return {"rules": docs}

    @router.post(
        "/validate",
        summary="Validate a rule without saving it",
        responses={400: {"description": "invalid: problems lists each field and why"}},
    )
    async def validate(doc: Annotated[dict[str, Any], Body(description="a rule document")]) -> dict[str, Any]:
        rule = _valid(doc, catalog, schemas)
        return {"valid": True, "rule": rule.document(), "warnings": rule.warnings}

    @router.get("/{rule_id}", summary="One rule", responses={404: {"description": "no such rule"}})
    async def get_rule(rule_id: str) -> dict[str, Any]:
        current = _current(rules, rule_id)
        if current is None:
            raise NotFound(f"no rule {rule_id!r}", field="rule_id")
        return current

    @router.put(
        "/{rule_id}",
        summary="Create or replace a rule (validated; the server assigns the next version)",
        responses={
            400: {"description": "invalid: problems lists each field and why"},
            412: {"description": "If-Match names another version"},
            503: {"description": "Kafka did not acknowledge; nothing was saved"},
        },
    )
    async def put_rule(
        rule_id: str,
        doc: Annotated[dict[str, Any], Body(description="the rule (id optional, version ignored)")],
        response: Response,
        if_match: Annotated[str | None, Header(description="the version this save replaces")] = None,
    ) -> dict[str, Any]:
        if "id" in doc and doc["id"] != rule_id:
            raise InvalidRule(f"the body's id {doc['id']!r} differs from the path's {rule_id!r}", field="id")
        current = _current(rules, rule_id)
        _check_if_match(if_match, current, rule_id)
        version = int(current.get("version", 0)) + 1 if current is not None else 1
        rule = _valid({**doc, "id": rule_id, "version": version}, catalog, schemas)
        try:
            await put(producer, topics.RULES, rule_id, rule.to_event())
        except DeliveryError as exc:
            raise Unavailable(f"the rule was not saved: {exc}") from None
        await visible(rule_id, version)
        response.status_code = 201 if current is None else 200
        response.headers["ETag"] = f'"{version}"'
        return {"rule": rule.document(), "warnings": rule.warnings}

    @router.delete(
        "/{rule_id}",
        status_code=204,
        summary="Delete a rule (a tombstone on whale.rules)",
        responses={404: {"description": "no such rule"}, 412: {"description": "If-Match mismatch"}},
    )
    async def delete_rule(
        rule_id: str,
        if_match: Annotated[str | None, Header(description="the version this delete removes")] = None,
    ) -> Response:
        current = _current(rules, rule_id)
        if current is None:
            raise NotFound(f"no rule {rule_id!r}", field="rule_id")
        _check_if_match(if_match, current, rule_id)
        try:
            await delete(producer, topics.RULES, rule_id)
        except DeliveryError as exc:
            raise Unavailable(f"the rule was not deleted: {exc}") from None
        await visible(rule_id, None)
        return Response(status_code=204)

    return router
