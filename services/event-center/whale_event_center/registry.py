"""The schema registry: event types and their JSON Schema versions on the compacted ``whale.schemas``.

Record format (the cross-service contract): key = event type, CloudEvent type
``whale.schema.registered``, data = ``{"type", "versions": [{"version", "schema", "registered_at"}]}``
with the latest version last. Every replica follows the topic, so all see the same contracts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from whale import topics
from whale.binding import KafkaMessage
from whale.cloudevent import CloudEvent, format_time
from whale.errors import DeliveryError
from whale.event_data import text_problem
from whale.producer import Delivered
from whale.schemas import RECORD_TYPE, SchemaCheck, SchemaVersion, schema_url
from whale_event_center import metrics
from whale_event_center.compat import breaks
from whale_event_center.errors import (
    Conflict,
    IncompatibleSchema,
    InvalidEvent,
    InvalidSchema,
    NotFound,
    Problem,
    Unavailable,
)

log = structlog.get_logger(__name__)
RECORD_SOURCE = "urn:whale:event-center:registry"


class View(Protocol):
    def get(self, key: str) -> CloudEvent | None: ...
    def items(self) -> dict[str, CloudEvent]: ...
    def wait_for(self, predicate: Callable[[dict[str, CloudEvent]], bool], timeout: float) -> bool: ...


class Sender(Protocol):
    async def send(self, topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered: ...
    async def send_message(self, topic: str, message: KafkaMessage) -> Delivered: ...


def check_schema(schema: Any) -> None:
    """Raise :class:`InvalidSchema` unless ``schema`` is a valid draft 2020-12 JSON Schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        pointer = "/" + "/".join(str(p) for p in exc.absolute_path)
        raise InvalidSchema(
            f"not a valid JSON Schema (draft 2020-12): {exc.message}",
            [{"field": pointer, "message": exc.message}],
        ) from None


def check_type_name(type_: str) -> None:
    """Raise :class:`InvalidEvent` unless ``type_`` can be a CloudEvents ``type`` (and a Kafka key)."""
    problem = text_problem(type_) if type_ else "must be a non-empty string"
    if problem:
        raise InvalidEvent(f"event type {problem}", field="type")


class SchemaRegistry:
    """Read side (a compacted view) plus the acknowledged write of new versions."""

    def __init__(self, view: View, producer: Sender, *, base_url: str, timeout: float = 30.0) -> None:
        self._view = view
        self._producer = producer
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._check = SchemaCheck(view, base_url=self._base_url)
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ read
    def types(self) -> list[str]:
        return sorted(self._view.items())

    def versions(self, type_: str) -> list[SchemaVersion]:
        return self._check.versions(type_)

    def deprecation(self, type_: str) -> dict[str, Any] | None:
        """``{"at", "reason"}`` when ``type_`` is deprecated, else None."""
        record = self._view.get(type_)
        found = (
            record.data.get("deprecated") if record is not None and isinstance(record.data, dict) else None
        )
        return found if isinstance(found, dict) else None

    def warnings(self, event: CloudEvent) -> list[Problem]:
        found = self.deprecation(event.type)
        if found is None:
            return []
        reason = f": {found['reason']}" if found.get("reason") else ""
        return [{"field": "type", "message": f"event type {event.type!r} is deprecated{reason}"}]

    def version(self, type_: str, number: int | None = None) -> SchemaVersion:
        versions = self.versions(type_)
        if not versions:
            raise NotFound(f"event type {type_!r} is not registered", field="type")
        if number is None:
            return versions[-1]
        for item in versions:
            if item.version == number:
                return item
        raise NotFound(f"event type {type_!r} has no schema version {number}", field="version")

    def schema_url(self, type_: str, number: int) -> str:
        return schema_url(self._base_url, type_, number)

    def check_event(self, event: CloudEvent) -> list[Problem]:
        """Problems of ``event`` against its registered contract (:class:`whale.schemas.SchemaCheck`)."""
        return self._check.problems(event)

    # ------------------------------------------------------------------ write
    async def register(self, type_: str, schema: Any, *, force: bool = False) -> tuple[SchemaVersion, bool]:
        """Add ``schema`` as the next version of ``type_``; returns (version, created).

        An identical schema is not registered twice. An incompatible one raises
        :class:`IncompatibleSchema` listing every break unless ``force``.
        """
        check_type_name(type_)
        check_schema(schema)
        async with self._lock:
            current = self.versions(type_)
            if current and current[-1].schema == schema:
                metrics.SCHEMA_CHANGES.labels(outcome="unchanged").inc()
                return current[-1], False
            if current:
                found = breaks(current[-1].schema, schema)
                if found and not force:
                    metrics.SCHEMA_CHANGES.labels(outcome="incompatible").inc()
                    raise IncompatibleSchema(
                        f"the new schema of {type_!r} is not backward compatible with version "
                        f"{current[-1].version} ({len(found)} break(s)); PUT with ?force=true to override",
                        found,
                    )
                if found:
                    log.warning("schema_forced", type=type_, breaks=len(found))
            item = SchemaVersion(
                type_, (current[-1].version + 1) if current else 1, schema, format_time(datetime.now(UTC))
            )
            data = {"type": type_, "versions": [v.to_json() for v in [*current, item]]}
            event = CloudEvent.create(type=RECORD_TYPE, source=RECORD_SOURCE, subject=type_, data=data)
            try:
                await self._producer.send(topics.SCHEMAS, event, key=type_)
            except DeliveryError as exc:
                raise Unavailable(f"Kafka did not acknowledge the schema of {type_!r}: {exc}") from None
            seen = await asyncio.to_thread(
                self._view.wait_for, lambda view: _has_version(view.get(type_), item.version), self._timeout
            )
            if not seen:
                raise Unavailable(
                    f"the schema of {type_!r} was written but not read back within {self._timeout}s"
                )
            metrics.SCHEMA_CHANGES.labels(outcome="forced" if current and force else "registered").inc()
            return item, True

    async def deprecate(self, type_: str, reason: str = "") -> dict[str, Any]:
        """Mark ``type_`` deprecated (events are still accepted, with a warning); a new version
        registered later revives it. Returns the deprecation."""
        async with self._lock:
            current = self.versions(type_)
            if not current:
                raise NotFound(f"event type {type_!r} is not registered", field="type")
            note = {"at": format_time(datetime.now(UTC)), "reason": reason}
            data = {"type": type_, "versions": [v.to_json() for v in current], "deprecated": note}
            event = CloudEvent.create(type=RECORD_TYPE, source=RECORD_SOURCE, subject=type_, data=data)
            await self._write(type_, event, lambda view: self._deprecated_in(view, type_))
            return note

    async def delete(self, type_: str, events_in_retention: Callable[[str], Awaitable[int]]) -> None:
        """Remove a deprecated type that has no event in retention (a tombstone on ``whale.schemas``)."""
        async with self._lock:
            if not self.versions(type_):
                raise NotFound(f"event type {type_!r} is not registered", field="type")
            if self.deprecation(type_) is None:
                raise Conflict(
                    f"deprecate {type_!r} before deleting it (POST /schemas/{{type}}/deprecate)", field="type"
                )
            count = await events_in_retention(type_)
            if count:
                raise Conflict(
                    f"{count} event(s) of {type_!r} are still in retention; delete it after they expire",
                    field="type",
                )
            await self._write(type_, None, lambda view: type_ not in view)
            metrics.SCHEMA_CHANGES.labels(outcome="deleted").inc()

    @staticmethod
    def _deprecated_in(view: dict[str, CloudEvent], type_: str) -> bool:
        record = view.get(type_)
        return record is not None and isinstance(record.data, dict) and "deprecated" in record.data

    async def _write(
        self, type_: str, event: CloudEvent | None, seen: Callable[[dict[str, CloudEvent]], bool]
    ) -> None:
        try:
            if event is None:
                await self._producer.send_message(topics.SCHEMAS, KafkaMessage(type_.encode(), None, ()))
            else:
                await self._producer.send(topics.SCHEMAS, event, key=type_)
        except DeliveryError as exc:
            raise Unavailable(f"Kafka did not acknowledge the change of {type_!r}: {exc}") from None
        if not await asyncio.to_thread(self._view.wait_for, seen, self._timeout):
            raise Unavailable(
                f"the change of {type_!r} was written but not read back within {self._timeout}s"
            )

    async def register_directory(self, directory: Path) -> list[str]:
        """Register every ``*.json`` schema there (``$id`` = type) that is new or changed compatibly."""
        done: list[str] = []
        for path, schema in await asyncio.to_thread(_read_schemas, directory):
            try:
                type_ = schema.get("$id") or path.stem if isinstance(schema, dict) else path.stem
                _, created = await self.register(str(type_), schema)
                if created:
                    done.append(str(type_))
            except (InvalidSchema, IncompatibleSchema) as exc:
                log.warning("bundled_schema_skipped", path=str(path), error=str(exc))
        return done


def _read_schemas(directory: Path) -> list[tuple[Path, Any]]:
    out: list[tuple[Path, Any]] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            out.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            log.warning("bundled_schema_unreadable", path=str(path), error=str(exc))
    return out


def _has_version(record: CloudEvent | None, version: int) -> bool:
    if record is None or not isinstance(record.data, dict):
        return False
    return any(isinstance(v, dict) and v.get("version") == version for v in record.data.get("versions") or [])
