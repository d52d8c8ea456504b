"""What the management APIs over compacted topics (``/rules``, ``/subscriptions``) share.

Each entity is one key of a compacted topic whose record's data is the entity's whole state; the
API reads it from this process' :class:`whale.compacted.CompactedView`, writes a whole new record
or a tombstone, and answers once Kafka acknowledged the write and the view shows it. The routers
keep their own concept (validation, versions, pausing); this module keeps the reading, the precise
404, the acknowledged write and the wait until the change is visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView, delete, put
from whale.errors import DeliveryError
from whale.producer import EventProducer
from whale_event_center.errors import EventCenterError, NotFound, Unavailable

VISIBLE_WITHIN = 10.0

Document = dict[str, Any]

# OpenAPI descriptions of the answers every such API gives the same way
INVALID: dict[str, Any] = {"description": "invalid: problems lists each field and why"}
NOT_SAVED: dict[str, Any] = {"description": "Kafka did not acknowledge; nothing was saved"}


def check_body_id(doc: Document, key: str, invalid: type[EventCenterError]) -> None:
    """Refuse a body whose ``id`` names another entity than the path does (``invalid``, field ``id``)."""
    if "id" in doc and doc["id"] != key:
        raise invalid(f"the body's id {doc['id']!r} differs from the path's {key!r}", field="id")


@dataclass(frozen=True)
class Entities:
    """One kind of entity on one compacted topic.

    ``noun`` names the entity in every message ("rule", "subscription"); ``key_field`` is the path
    parameter that carries the key, named as the field of a 404.
    """

    producer: EventProducer
    view: CompactedView
    topic: str
    noun: str
    key_field: str

    def current(self, key: str) -> Document | None:
        """The entity's current state, or None when the view has no such key (or no document)."""
        record = self.view.get(key)
        return record.data if record is not None and isinstance(record.data, dict) else None

    def stored(self, key: str) -> Document:
        """The entity's current state; :class:`NotFound` naming the entity and the key otherwise."""
        current = self.current(key)
        if current is None:
            raise NotFound(f"no {self.noun} {key!r}", field=self.key_field)
        return current

    def documents(self) -> list[Document]:
        """Every entity's current state, ordered by key."""
        items = self.view.items()
        return [items[k].data for k in sorted(items) if isinstance(items[k].data, dict)]

    async def write(self, key: str, event: CloudEvent, shows: Callable[[Document], bool]) -> None:
        """Write ``event`` as the entity's new state, then wait until the view's state ``shows`` it.

        :class:`Unavailable` (nothing saved) when Kafka did not acknowledge.
        """
        try:
            await put(self.producer, self.topic, key, event)
        except DeliveryError as exc:
            raise Unavailable(f"the {self.noun} was not saved: {exc}") from None
        await self._visible(key, shows)

    async def remove(self, key: str) -> None:
        """Write the entity's tombstone, then wait until the view no longer has it.

        :class:`Unavailable` (nothing deleted) when Kafka did not acknowledge.
        """
        try:
            await delete(self.producer, self.topic, key)
        except DeliveryError as exc:
            raise Unavailable(f"the {self.noun} was not deleted: {exc}") from None
        await self._visible(key, None)

    async def _visible(self, key: str, shows: Callable[[Document], bool] | None) -> None:
        """Wait (at most :data:`VISIBLE_WITHIN` seconds) for the key to show the state or be gone."""

        def seen(items: dict[str, CloudEvent]) -> bool:
            record = items.get(key)
            if shows is None:
                return record is None
            return record is not None and isinstance(record.data, dict) and shows(record.data)

        await asyncio.to_thread(self.view.wait_for, seen, VISIBLE_WITHIN)
