"""The event center's validation rules, applied where the adapters produce.

Adapters never call the event center's HTTP API (services talk only through Kafka). They share its
validation code instead: the attributes are checked by the shared :class:`whale.cloudevent.CloudEvent`
model, and ``data`` against the latest JSON Schema registered for the event's type, read from the
compacted ``whale.schemas`` topic (owned by the event center) through a
:class:`whale.compacted.CompactedView`, with the one contract check every producer of user events
shares (:class:`whale.schemas.SchemaCheck`): a type without a registered schema is refused, as the
event center refuses it, ``format`` is checked and a ``dataschema`` naming a version selects it.
Validated events are written to ``whale.ingest``, whose dedupe stage forwards them to ``whale.events``.
"""

from __future__ import annotations

import json
from typing import Any

from whale import topics
from whale.cloudevent import CloudEvent, edge_problems
from whale.compacted import CompactedView
from whale.event_data import MAX_DEPTH, data_problem
from whale.schemas import SchemaCheck, SchemaSource, describe
from whale.settings import WhaleSettings
from whale_adapters.errors import BodyError, PayloadError


def parse_body(body: bytes, what: str) -> Any:
    """The JSON of a request body, nested at most :data:`~whale.event_data.MAX_DEPTH` levels
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


class EventValidator:
    """The adapters' side of :class:`whale.schemas.SchemaCheck`: the event center's edge checks,
    then the shared contract check (registered type, ``dataschema`` version, ``format``), each
    failure a :class:`PayloadError` (422) naming the field and why.

    ``schemas`` None means no registry is configured (unit tests of other parts): the edge checks
    only."""

    def __init__(self, schemas: SchemaSource | None) -> None:
        self._check = SchemaCheck(schemas) if schemas is not None else None

    def validate(self, event: CloudEvent) -> None:
        """Raise :class:`PayloadError` listing each problem of ``event``."""
        edge = edge_problems(event)
        if edge:
            raise PayloadError(
                f"event {event.id} ({event.type}): {edge[0]['message']}", edge, event_id=event.id
            )
        if self._check is None:
            return
        problems = self._check.problems(event)
        if problems:
            raise PayloadError(
                f"event {event.id} ({event.type}) breaks its contract: {describe(problems)}",
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
