"""A rule's version history, read from its audit events in Elasticsearch; diffs between versions.

``whale.rules`` is compacted (it keeps only each rule's latest version), but every save, rollback and
delete through ``/rules`` publishes ``whale.audit.rule.*`` with the document after the change, and the
indexer stores those events. The history of a rule is its saves (and rollbacks) since its last delete
(a re-created rule starts again at version 1); when the rule is deleted now, the history is the life
that delete ended. The rule's current version on ``whale.rules`` joins the list while its audit event
is still on its way to the index, so the newest version is never missing.

Limits: history is as long as the index's retention (``WHALE_EVENT_CENTER_RETENTION_DAYS``), and audit
events carry documents with secrets redacted (``***``), so such a version can be shown but not restored.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from typing import Any, Protocol

import yaml

from whale import audit
from whale.cloudevent import CloudEvent, parse_time
from whale_event_center.errors import Conflict, NotFound

SAVES = ("whale.audit.rule.saved", "whale.audit.rule.rolled_back")
DELETED = "whale.audit.rule.deleted"
MAX_EVENTS = 10_000  # Elasticsearch's default result window
IGNORED = frozenset({"version"})  # the number every save changes: not a difference worth listing

Version = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Searchable(Protocol):
    async def search(self, query: dict[str, Any]) -> dict[str, Any]: ...


def history_query(rule_id: str) -> dict[str, Any]:
    """Every stored audit event of ``rule_id``'s saves, rollbacks and deletes."""
    return {
        "size": MAX_EVENTS,
        "sort": [{"time": {"order": "desc"}}, {"doc_id": {"order": "asc"}}],
        "query": {
            "bool": {
                "filter": [
                    {"terms": {"type": [*SAVES, DELETED]}},
                    {"term": {"subject": f"rule/{rule_id}"}},
                    {"term": {"source": audit.SOURCE}},
                ]
            }
        },
        "_source": {"includes": ["raw"]},
    }


def _event(hit: dict[str, Any]) -> dict[str, Any] | None:
    raw = hit.get("_source", {}).get("raw")
    try:
        event = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("data"), dict) else None


def _when(event: dict[str, Any]) -> datetime:
    try:
        return parse_time(str(event.get("time")))
    except ValueError:
        return EPOCH


def _entry(event: dict[str, Any]) -> Version | None:
    data = event["data"]
    doc = data.get("after")
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), int):
        return None
    out: Version = {
        "version": doc["version"],
        "time": event.get("time"),
        "actor": data.get("actor"),
        "action": data.get("action"),
        "rule": doc,
    }
    if "rolled_back_from" in data:
        out["rolled_back_from"] = data["rolled_back_from"]
    return out


def _number(event: dict[str, Any]) -> int:
    after = event["data"].get("after")
    number = after.get("version") if isinstance(after, dict) else None
    return number if isinstance(number, int) else -1


def life(events: list[dict[str, Any]], *, exists: bool) -> list[Version]:
    """The versions of the rule's current (or, when deleted, last) life, newest first.

    ``exists``: the rule is on ``whale.rules`` now; then a newest event that is a delete means the
    saves of its new life are not indexed yet (an empty list), else it is the delete that ended the
    life to show."""
    ordered = sorted(
        (e for e in events if e.get("time")),
        key=lambda e: (_when(e), _number(e)),
        reverse=True,
    )
    out: list[Version] = []
    for index, event in enumerate(ordered):
        if event.get("type") == DELETED:
            if index == 0 and not exists:
                continue  # deleted now: show the life this delete ended
            break
        entry = _entry(event)
        if entry is not None and all(v["version"] != entry["version"] for v in out):
            out.append(entry)
    return sorted(out, key=lambda v: v["version"], reverse=True)


async def versions(store: Searchable, rule_id: str, current: CloudEvent | None) -> list[Version]:
    """Every version of ``rule_id``, newest first; :class:`NotFound` when it has none."""
    hits = (await store.search(history_query(rule_id))).get("hits", {}).get("hits", [])
    found = life([e for e in map(_event, hits) if e is not None], exists=current is not None)
    doc = current.data if current is not None else None
    number = doc.get("version") if isinstance(doc, dict) else None
    if current is not None and isinstance(number, int) and (not found or number > found[0]["version"]):
        # its audit event is not indexed yet: the compacted topic has it already
        found.insert(0, {"version": number, "time": _text(current.time), "actor": None, "rule": doc})
    if not found:
        raise NotFound(f"no saved version of rule {rule_id!r} is stored", field="rule_id")
    return found


def _text(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def pick(found: list[Version], rule_id: str, number: int, field: str = "version") -> Version:
    """Version ``number`` of ``found``; :class:`NotFound` naming ``field`` otherwise."""
    for version in found:
        if version["version"] == number:
            return version
    have = ", ".join(str(v["version"]) for v in reversed(found))
    raise NotFound(f"rule {rule_id!r} has no version {number} (stored: {have})", field=field)


def changes(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """JSON-Patch-like differences (RFC 6901 paths): ``add``/``remove``/``replace`` with old and new."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(old) | set(new)):
            if not path and key in IGNORED:
                continue
            where = f"{path}/{_escape(str(key))}"
            if key not in new:
                out.append({"op": "remove", "path": where, "old": old[key]})
            elif key not in old:
                out.append({"op": "add", "path": where, "new": new[key]})
            else:
                out.extend(changes(old[key], new[key], where))
        return out
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path or "/", "old": old, "new": new}]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def unified(old: Version, new: Version, rule_id: str) -> str:
    """A unified diff of the two documents as YAML (keys sorted)."""

    def lines(v: Version) -> list[str]:
        return yaml.safe_dump(v["rule"], sort_keys=True, allow_unicode=True).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(
            lines(old), lines(new), f"{rule_id}@{old['version']}", f"{rule_id}@{new['version']}"
        )
    )


def restorable(doc: Any, path: str = "") -> None:
    """Refuse (:class:`Conflict`, naming the field) a document whose audit copy redacted a secret."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            where = f"{path}.{key}" if path else str(key)
            if value == audit.REDACTED and audit.SECRET_KEY.search(str(key)):
                raise Conflict(
                    f"this version's {where} was redacted in the audit trail; restore it by a PUT",
                    field=where,
                )
            restorable(value, where)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            restorable(value, f"{path}[{index}]")
