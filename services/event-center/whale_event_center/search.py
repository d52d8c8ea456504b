"""Queries over the indexed events: filtered search with stable pagination, lookup, causal traces."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from whale.es.documents import event_doc_id
from whale.es.store import Store
from whale.event_data import READ_DEPTH, depth_within
from whale_event_center.errors import InvalidEvent, NotFound

SORT = [{"time": {"order": "desc"}}, {"doc_id": {"order": "asc"}}]
TRACE_LIMIT = 1000


@dataclass(slots=True)
class EventQuery:
    type: list[str] = field(default_factory=list)
    source: str | None = None
    source_prefix: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    topic: str | None = None
    kind: str | None = None
    size: int = 50
    after: str | None = None

    def to_es(self) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        if self.type:
            filters.append({"terms": {"type": self.type}})
        for name in ("source", "subject", "topic", "kind"):
            value = getattr(self, name)
            if value is not None:
                filters.append({"term": {name: value}})
        if self.source_prefix is not None:
            filters.append({"prefix": {"source": self.source_prefix}})
        if self.since is not None or self.until is not None:
            bounds = {}
            if self.since is not None:
                bounds["gte"] = self.since.isoformat()
            if self.until is not None:
                bounds["lt"] = self.until.isoformat()
            filters.append({"range": {"time": bounds}})
        for name, value in self.extensions.items():
            filters.append({"term": {f"extensions.{name}": value}})
        must: list[dict[str, Any]] = []
        if self.text:
            must.append(
                {
                    "simple_query_string": {
                        "query": self.text,
                        "fields": ["data_text"],
                        "default_operator": "and",
                    }
                }
            )
        body: dict[str, Any] = {
            "size": self.size,
            "sort": SORT,
            "query": {"bool": {"filter": filters, "must": must}},
            "_source": {"excludes": ["data", "data_text"]},
        }
        if self.after:
            body["search_after"] = decode_cursor(self.after)
        return body


def encode_cursor(sort_values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(sort_values).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != len(SORT):
        raise InvalidEvent("the 'after' cursor is not one this API returned", field="after")
    return values


def present(hit: dict[str, Any]) -> dict[str, Any]:
    """One search hit as the API shows it: the CloudEvent plus where it was read."""
    doc = hit.get("_source", {})
    raw = doc.get("raw")
    event: Any = None
    if isinstance(raw, str):
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError):
            event = raw
        if not depth_within(event, READ_DEPTH):
            event = raw  # stored before depth was limited: shown as its JSON text, never a 500
    out: dict[str, Any] = {
        "kind": doc.get("kind"),
        "event": event,
        "topic": doc.get("topic"),
        "partition": doc.get("partition"),
        "offset": doc.get("offset"),
        "time": doc.get("time"),
    }
    if doc.get("dlq"):
        out["dlq"] = doc["dlq"]
    if doc.get("headers") and doc.get("kind") != "event":
        out["headers"] = doc["headers"]
    return out


async def search(store: Store, query: EventQuery) -> dict[str, Any]:
    result = await store.search(query.to_es())
    hits = result.get("hits", {}).get("hits", [])
    next_cursor = encode_cursor(hits[-1]["sort"]) if len(hits) == query.size and hits else None
    return {"events": [present(h) for h in hits], "next": next_cursor}


async def get_event(store: Store, source: str, id_: str) -> dict[str, Any]:
    result = await store.search({"size": 1, "query": {"term": {"doc_id": event_doc_id(source, id_)}}})
    hits = result.get("hits", {}).get("hits", [])
    if not hits:
        raise NotFound(f"no event with source {source!r} and id {id_!r} is indexed (yet)", field="id")
    return present(hits[0])


async def trace(store: Store, correlation_id: str) -> dict[str, Any]:
    """Every indexed event of one chain, parents before children, each with its causation link."""
    query = {
        "size": TRACE_LIMIT,
        "sort": [{"time": {"order": "asc"}}, {"doc_id": {"order": "asc"}}],
        "query": {
            "bool": {
                "should": [{"term": {"correlationid": correlation_id}}, {"term": {"id": correlation_id}}],
                "minimum_should_match": 1,
            }
        },
        "_source": {"excludes": ["data", "data_text"]},
    }
    hits = (await store.search(query)).get("hits", {}).get("hits", [])
    if not hits:
        raise NotFound(
            f"no event of correlation id {correlation_id!r} is indexed (yet)", field="correlation_id"
        )
    return {"correlation_id": correlation_id, "events": causal_order([present(h) for h in hits])}


def causal_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first from the chain's roots (items are time-ordered): a cause always precedes its effects."""
    ids = {_attr(item, "id") for item in items}
    children: dict[str, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for item in items:
        cause = _attr(item, "causationid")
        if cause is not None and cause in ids and cause != _attr(item, "id"):
            children.setdefault(cause, []).append(item)
        else:
            roots.append(item)
    out: list[dict[str, Any]] = []
    seen: set[int] = set()

    def visit(item: dict[str, Any], depth: int) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        out.append({**item, "causationid": _attr(item, "causationid"), "depth": depth})
        for child in children.get(str(_attr(item, "id")), []):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    for item in items:  # cycles (malformed links) still appear once
        visit(item, 0)
    return out


def _attr(item: dict[str, Any], name: str) -> Any:
    event = item.get("event")
    return event.get(name) if isinstance(event, dict) else None
