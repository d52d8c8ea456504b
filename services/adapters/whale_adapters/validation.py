"""The event center's validation rules, applied where the adapters produce.

Adapters never call the event center's HTTP API (services talk only through Kafka). They share its
validation code instead: the attributes are checked by the shared :class:`whale.cloudevent.CloudEvent`
model, and ``data`` against the latest JSON Schema registered for the event's type, read from the
compacted ``whale.schemas`` topic (owned by the event center) through a
:class:`whale.compacted.CompactedView`. A type without a registered schema is accepted, as the event
center accepts it. Validated events are written to ``whale.ingest``, whose dedupe stage forwards them
to ``whale.events``.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from whale import topics
from whale.cloudevent import MAX_DEPTH, CloudEvent, data_problem, edge_problems
from whale.compacted import CompactedView
from whale.settings import WhaleSettings
from whale_adapters.errors import BodyError, PayloadError


class SchemaSource(Protocol):
    """Where registered schemas come from (the compacted view, or a dict in unit tests)."""

    def get(self, key: str) -> CloudEvent | None: ...


def latest_schema(record: CloudEvent | None) -> tuple[int, dict[str, Any]] | None:
    """(version, schema) of the latest version in a ``whale.schema.registered`` record."""
    if record is None or not isinstance(record.data, dict):
        return None
    versions = record.data.get("versions")
    if not isinstance(versions, list) or not versions:
        return None
    last = versions[-1]
    if not isinstance(last, dict) or not isinstance(last.get("schema"), dict):
        return None
    return int(last.get("version", len(versions))), last["schema"]


def parse_body(body: bytes, what: str) -> Any:
    """The JSON of a request body, nested at most :data:`~whale.cloudevent.MAX_DEPTH` levels
    (the event center's limit) and valid Unicode; :class:`BodyError` (400) says why not."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyError(
            f"{what}: body is not JSON: {exc}", [{"field": "body", "message": str(exc)}]
        ) from None
    except RecursionError:
        pointer, message = "/", f"the body is nested deeper than {MAX_DEPTH} levels"
    else:
        found = data_problem(doc, MAX_DEPTH)
        if found is None:
            return doc
        pointer, message = found
    problem = {"field": "body", "pointer": pointer, "message": message}
    raise BodyError(f"{what}: body{pointer if pointer != '/' else ''}: {message}", [problem])


def _path(parts: Any) -> str:
    out = "data"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class EventValidator:
    """Checks an event's data against its type's registered schema (compiled once per version)."""

    def __init__(self, schemas: SchemaSource | None) -> None:
        self._schemas = schemas
        self._compiled: dict[tuple[str, int], Draft202012Validator] = {}
        self._lock = threading.Lock()

    def validate(self, event: CloudEvent) -> None:
        """Raise :class:`PayloadError` listing each field of ``data`` that breaks the schema."""
        edge = edge_problems(event)
        if edge:
            raise PayloadError(
                f"event {event.id} ({event.type}): {edge[0]['message']}", edge, event_id=event.id
            )
        if self._schemas is None:
            return
        found = latest_schema(self._schemas.get(event.type))
        if found is None:
            return
        version, schema = found
        with self._lock:
            validator = self._compiled.get((event.type, version))
            if validator is None:
                try:
                    Draft202012Validator.check_schema(schema)
                except SchemaError:
                    return  # the event center refuses such schemas; nothing to enforce
                validator = Draft202012Validator(schema)
                self._compiled[(event.type, version)] = validator
        problems = [
            {"field": _path(err.absolute_path), "message": err.message}
            for err in sorted(validator.iter_errors(event.data), key=lambda e: list(e.absolute_path))
        ]
        if problems:
            text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise PayloadError(
                f"event {event.id} ({event.type}) breaks schema version {version}: {text}",
                problems,
                event_id=event.id,
                field=problems[0]["field"],
            )


async def start_schema_view(settings: WhaleSettings) -> CompactedView:
    """Follow ``whale.schemas``; returns once caught up."""
    view = CompactedView(settings, topics.SCHEMAS)
    await view.start()
    return view


def ingest_key(event: CloudEvent) -> str:
    """The ``whale.ingest`` key: source + id, so a re-sent event lands on the same partition as
    its first copy and the dedupe stage sees both (same format as the event center's)."""
    return f"{event.source}\n{event.id}"
