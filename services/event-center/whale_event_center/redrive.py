"""Redriving dead letters: each back towards the topic it came from, as a new event linked to the
dead letter (extension ``redriveof`` = the dead letter's id, ``GET /dlq/{id}``).

*Processed once.* The redriven event's id is derived from the dead letter's id
(``redrive-<sha256>``), so a second redrive of the same dead letter is the same event: a dead letter
of ``whale.ingest`` or ``whale.events`` re-enters through ``whale.ingest``, whose dedupe stage drops
the repeat (and then reaches ``whale.events`` as before); an action request keeps its idempotency key
(the executor answers a repeat with the recorded result); before any redrive the API also refuses a
dead letter whose redriven event is already indexed (409), or that this replica redrove.
The event keeps its type, source, subject, data and chain (``correlationid``); ``redriveof`` is new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from whale import topics
from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.es.store import Store
from whale_event_center.errors import Conflict
from whale_event_center.service import ingest_key

REDRIVE_OF = "redriveof"


@dataclass(frozen=True, slots=True)
class Redrive:
    dead_letter: str  # the dead letter's id (its Elasticsearch doc id)
    topic: str
    key: str | None
    event: CloudEvent


def dead_letter(hit: dict[str, Any]) -> dict[str, Any]:
    """One dead letter as ``/dlq`` shows it."""
    doc = hit.get("_source", {})
    dlq = doc.get("dlq") or {}
    event: Any = None
    if isinstance(doc.get("raw"), str):
        try:
            event = json.loads(doc["raw"])
        except ValueError:
            event = doc["raw"]
    return {
        "id": doc.get("doc_id"),
        "kind": doc.get("kind"),
        "reason": dlq.get("reason"),
        "topic": dlq.get("topic") or None,
        "partition": dlq.get("partition"),
        "offset": dlq.get("offset"),
        "group": dlq.get("group") or None,
        "time": doc.get("time"),
        "event": event,
    }


def plan(letter: dict[str, Any], *, ingest_topic: str, events_topic: str) -> Redrive:
    """Where and what to send for ``letter`` (a :func:`dead_letter`); 409 when it cannot be redriven."""
    origin = letter.get("topic")
    raw = letter.get("event")
    if letter.get("kind") != "dlq" or not origin or not isinstance(raw, dict):
        raise Conflict(f"dead letter {letter.get('id')!r} is not a readable CloudEvent with an origin topic",
                       field="id")  # fmt: skip
    try:
        original = CloudEvent.from_structured(raw)
    except EventError as exc:
        raise Conflict(f"dead letter {letter.get('id')!r} cannot be read back: {exc}", field="id") from None
    new_id = "redrive-" + hashlib.sha256(str(letter["id"]).encode()).hexdigest()[:32]
    event = original.model_copy(
        update={"id": new_id, "extensions": {**original.extensions, REDRIVE_OF: str(letter["id"])}}
    )
    if origin in (ingest_topic, events_topic):
        return Redrive(letter["id"], ingest_topic, ingest_key(event.source, event.id), event)
    if origin == topics.ACTIONS or origin.startswith(topics.ACTIONS + "."):
        data = event.data if isinstance(event.data, dict) else {}
        key = data.get("idempotency_key")
        return Redrive(letter["id"], origin, key if isinstance(key, str) else None, event)
    return Redrive(letter["id"], origin, None, event)


async def redriven_already(store: Store, dead_letter_id: str) -> bool:
    """Whether the event redriven from ``dead_letter_id`` is indexed (on whatever topic it reached)."""
    return await store.count({"term": {f"extensions.{REDRIVE_OF}": dead_letter_id}}) > 0
