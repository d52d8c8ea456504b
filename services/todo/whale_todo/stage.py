"""The to-do list: events no automation handles, and explicit requests, become items for people.

The to-do stage (``whale run todo``) consumes ``whale.events`` and ``whale.results``. An event whose
type no enabled rule matches (the rule engine's :class:`whale.rules.ruleset.RuleSet`: the rules
directory and the compacted ``whale.rules`` topic) opens a to-do item, and so does
a ``whale.todo.requested`` event or an action result whose output carries ``todo_request`` (the
``todo.open`` action). A signal whose merge key (type + subject by default, or a configured template
per type, or the request's ``key``) matches an open item is merged into it (``count`` + 1) instead.
Claim/resolve commands (``whale.todo.change.requested``, written by the ``/todos`` API) change items.

The stage is the single writer of ``whale.todos`` (compacted, key = item id, data = whole item); every
change is also announced on ``whale.results`` as ``whale.todo.created|updated|resolved``, caused by
the event that made it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from whale import topics
from whale.cloudevent import CloudEvent, format_time
from whale.correlation import caused_by, correlation_id
from whale.rules import templating
from whale.rules.paths import event_context
from whale.rules.ruleset import RuleSet
from whale.store import LocalStore
from whale.todos import (
    CHANGE_REQUESTED,
    CREATED,
    OPEN_STATES,
    OPS,
    REQUESTED,
    RESOLVED,
    SAVED,
    SOURCE,
    UPDATED,
)
from whale_todo import metrics
from whale_todo.settings import Settings
from whale_todo.store import StoredItems, applied, open_id, put_item

log = structlog.get_logger(__name__)


def now_text() -> str:
    return format_time(datetime.now(UTC))


def load_rules(directory: Path | None) -> RuleSet:
    """The shared rule set, seeded with the rules directory when it exists (else topic rules only)."""
    rules = RuleSet()
    if directory is not None and directory.is_dir():
        report = rules.load_directory(directory)
        for where, problem in report.problems:
            log.warning("rule_not_loaded", where=where, problem=problem)
    return rules


@dataclass(frozen=True, slots=True)
class Change:
    """What an event did to one item: the new state and the announcement type."""

    item: dict[str, Any]
    type: str
    change: str
    by: str | None = None


class TodoBook:
    """The items (on disk: :mod:`whale_todo.store`) and the decisions. Changes are
    staged until :meth:`commit` (after Kafka acknowledged them) or dropped by :meth:`rollback`."""

    def __init__(self, settings: Settings, store: LocalStore) -> None:
        self._settings = settings
        self.store = store
        self.items = StoredItems(store, store.batch())

    def load(self, item: Mapping[str, Any]) -> None:
        put_item(self.items.batch, item, OPEN_STATES)

    def open_item(self, key: str) -> dict[str, Any] | None:
        item_id = open_id(self.items.batch, key)
        return self.items.get(item_id) if item_id else None

    def commit(self, delivered: list[Any]) -> None:
        """Store the staged changes with the ``whale.todos`` offsets they were ``delivered`` at."""
        self.store.commit(self.items.batch, applied(self.store, delivered))

    def rollback(self) -> None:
        self.items.batch.staged.clear()

    def merge_key(self, event: CloudEvent) -> str:
        template = self._settings.merge_keys.get(event.type)
        if template:
            try:
                return f"{event.type}|{templating.render(template, event_context(event)).strip()}"
            except templating.TemplateError as exc:
                log.warning("merge_key_template_failed", type=event.type, error=str(exc))
        return f"{event.type}|{event.subject or ''}"

    def ignored(self, event: CloudEvent) -> bool:
        return any(event.type.startswith(p) for p in self._settings.ignore_type_prefixes)

    def signal(self, event: CloudEvent, request: Mapping[str, Any] | None = None) -> Change | None:
        """An unhandled event (``request`` None) or a to-do request: open an item or merge into one."""
        if request is not None:
            key = str(request.get("key") or f"{REQUESTED}|{event.id}")
            title = str(request.get("title") or "to-do")
            details = request.get("details", {})
            kind, origin = str(request.get("type") or event.type), "requested"
            seen_id = str(request.get("request_id") or event.id)
        else:
            key = self.merge_key(event)
            title = f"{event.type}" + (f" on {event.subject}" if event.subject else "")
            details, kind, origin = event.data, event.type, "unhandled"
            seen_id = event.id
        ref = {"source": event.source, "id": event.id, "time": event.time_text()}
        existing = self.open_item(key)
        if existing is not None:
            if seen_id in existing.get("seen", []):
                return None  # redelivered: already counted
            item = {
                **existing,
                "count": int(existing.get("count", 1)) + 1,
                "last_event": ref,
                "updated_at": now_text(),
                "seen": [*existing.get("seen", []), seen_id][-self._settings.seen_limit :],
            }
            self.load(item)
            return Change(item, UPDATED, "merged")
        stamp = now_text()
        item = {
            "id": str(uuid.uuid4()),
            "key": key,
            "status": "open",
            "title": title,
            "type": kind,
            "subject": event.subject,
            "origin": origin,
            "count": 1,
            "details": details,
            "first_event": ref,
            "last_event": ref,
            "correlationid": correlation_id(event),
            "created_at": stamp,
            "updated_at": stamp,
            "claimed_by": None,
            "resolved_by": None,
            "resolution": None,
            "comments": [],
            "last_command": None,
            "seen": [seen_id],
        }
        self.load(item)
        return Change(item, CREATED, "created")

    def command(self, event: CloudEvent) -> Change | None:
        """Apply a ``whale.todo.change.requested`` (claim, unclaim, resolve, comment)."""
        data = event.data if isinstance(event.data, Mapping) else {}
        current = self.items.get(str(data.get("todo_id", "")))
        op, by = str(data.get("op", "")), str(data.get("by") or "anonymous")
        if current is None or op not in OPS:
            log.warning(
                "todo_command_refused", todo_id=data.get("todo_id"), op=op, reason="unknown item or op"
            )
            return None
        if current.get("last_command") == event.id:
            return None  # redelivered
        if current["status"] == "resolved" and op != "comment":
            log.warning("todo_command_refused", todo_id=current["id"], op=op, reason="already resolved")
            return None
        item = {**current, "updated_at": now_text(), "last_command": event.id}
        comment = data.get("comment")
        if comment:
            item["comments"] = [
                *current.get("comments", []),
                {"by": by, "at": now_text(), "text": str(comment)},
            ]
        kind = UPDATED
        if op == "claim":
            item.update(status="claimed", claimed_by=by)
        elif op == "unclaim":
            item.update(status="open", claimed_by=None)
        elif op == "resolve":
            item.update(status="resolved", resolved_by=by, resolution=str(comment or "resolved"))
            kind = RESOLVED
        self.load(item)
        return Change(item, kind, op, by)

    def decide(self, event: CloudEvent, handled: bool, *, candidate: bool = True) -> Change | None:
        """The whole decision for one consumed event (``handled``: some enabled rule matches;
        ``candidate``: the event may become a to-do when unhandled, i.e. it came from ``whale.events``)."""
        if event.type == CHANGE_REQUESTED:
            return self.command(event)
        if event.type == REQUESTED:
            return self.signal(event, event.data if isinstance(event.data, Mapping) else {})
        output = event.data.get("output") if isinstance(event.data, Mapping) else None
        if isinstance(output, Mapping) and isinstance(output.get("todo_request"), Mapping):
            return self.signal(event, output["todo_request"])
        if not candidate or self.ignored(event) or handled:
            return None
        return self.signal(event)


def announcement(change: Change, cause: CloudEvent, source: str = SOURCE) -> CloudEvent:
    """The ``whale.todo.*`` event on ``whale.results`` for a change."""
    public = {k: v for k, v in change.item.items() if k not in ("seen", "last_command")}
    data = {"todo": public, "change": change.change, "by": change.by}
    return caused_by(cause, type=change.type, source=source, data=data, subject=change.item["id"])


def record(item: Mapping[str, Any], source: str = SOURCE) -> CloudEvent:
    """The compacted ``whale.todos`` record of an item."""
    return CloudEvent.create(type=SAVED, source=source, subject=str(item["id"]), data=dict(item))


class TodoStage:
    """Consumes events, decides, writes the item (compacted) then announces the change."""

    def __init__(self, settings: Settings, producer: Any, rules: RuleSet, book: TodoBook) -> None:
        self._settings = settings
        self._producer = producer
        self._rules = rules
        self._book = book

    async def handle(self, received: Any) -> None:
        await self.handle_batch([received])

    async def handle_batch(self, batch: list[Any]) -> None:
        """Decide for every event in order, then write each touched item's latest state (compacted:
        only the last one matters) and every announcement, all in flight at once. If a write fails
        the book's staged changes are dropped, so the consumer's retry decides the batch again."""
        self._book.rollback()
        changes: list[tuple[Change, CloudEvent]] = []
        for received in batch:
            event: CloudEvent = received.event
            candidate = received.topic == topics.EVENTS
            handled = (
                candidate and not self._book.ignored(event) and bool(self._rules.match(event_context(event)))
            )
            change = self._book.decide(event, handled, candidate=candidate)
            if change is not None:
                changes.append((change, event))
        if not changes:
            return
        latest = {change.item["id"]: change.item for change, _ in changes}
        sends = [
            self._producer.send(topics.TODOS, record(item, self._settings.source), key=key)
            for key, item in latest.items()
        ]
        sends += [
            self._producer.send(
                topics.RESULTS, announcement(change, event, self._settings.source), key=change.item["id"]
            )
            for change, event in changes
        ]
        try:
            delivered = await asyncio.gather(*sends)
        except BaseException:
            self._book.rollback()
            raise
        self._book.commit(list(delivered))
        for change, _ in changes:
            metrics.CHANGES.labels(change=change.change).inc()
            log.info(
                "todo_changed", todo_id=change.item["id"], change=change.change, count=change.item["count"]
            )
