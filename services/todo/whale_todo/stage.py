"""The to-do list: events no automation handles, and explicit requests, become items for people.

The to-do stage (``whale run todo``) consumes ``whale.events`` and ``whale.results``. An event whose
type no enabled rule matches (the rule engine's :class:`whale.rules.ruleset.RuleSet`: the rules
directory and the compacted ``whale.rules`` topic) opens a to-do item, and so does
a ``whale.todo.requested`` event or an action result whose output carries ``todo_request`` (the
``todo.open`` action, a workflow waiting for an approval); a result whose output carries
``todo_resolve: {key, by, resolution}`` resolves the open item of that key (an answered approval). A signal whose merge key (type + subject by default, or a configured template
per type, or the request's ``key``) matches an open item is merged into it (``count`` + 1) instead.
Claim/resolve commands (``whale.todo.change.requested``, written by the ``/todos`` API) change items.
Alerts (one to-do per incident, closed by their resolution, reopened by a re-firing) and the notices
that automation matched but did nothing (render failures, throttled recurrences, failed runs) are
decided in :mod:`whale_todo.incidents`. Assignee, priority, the due time from a per-type
SLA, the merged events' links and a person's reopen are in :mod:`whale_todo.work`; the
escalation of overdue items (``whale.todo.overdue``) in :mod:`whale_todo.escalation`.

The stage is the single writer of ``whale.todos`` (compacted, key = item id, data = whole item); every
change is also announced on ``whale.results`` as ``whale.todo.created|updated|resolved``, caused by
the event that made it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from whale import topics
from whale.cloudevent import CloudEvent
from whale.correlation import caused_by
from whale.enrichment import NO_ENRICHMENT, Enricher
from whale.incidents import alert_state
from whale.incidents import title as incident_title
from whale.rules import templating
from whale.rules.paths import event_context
from whale.rules.ruleset import RuleSet
from whale.store import Batch, LocalStore
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
from whale_todo import incidents, metrics, work
from whale_todo.items import Change, event_ref, new_item, now_text
from whale_todo.settings import Settings
from whale_todo.store import StoredItems, applied, last_id, open_item, put_item

log = structlog.get_logger(__name__)


def load_rules(directory: Path | None) -> RuleSet:
    """The shared rule set, seeded with the rules directory when it exists (else topic rules only)."""
    rules = RuleSet()
    if directory is not None and directory.is_dir():
        report = rules.load_directory(directory)
        for where, problem in report.problems:
            log.warning("rule_not_loaded", where=where, problem=problem)
    return rules


class TodoBook:
    """The items (on disk: :mod:`whale_todo.store`) and the decisions. Changes are
    staged until :meth:`commit` (after Kafka acknowledged them) or dropped by :meth:`rollback`."""

    def __init__(self, settings: Settings, store: LocalStore) -> None:
        self._settings = settings
        self.store = store
        self.items = StoredItems(store, store.batch())
        self.policy = work.Policy(
            sla=settings.sla,
            sla_default=settings.sla_default,
            priorities=settings.priorities,
            default_priority=settings.default_priority,
        )

    def load(self, item: Mapping[str, Any]) -> None:
        put_item(self.items.batch, item, OPEN_STATES)

    def open_item(self, key: str) -> dict[str, Any] | None:
        return open_item(self.items.batch, key, OPEN_STATES)

    @property
    def batch(self) -> Batch:
        return self.items.batch

    def last_item(self, key: str) -> dict[str, Any] | None:
        item_id = last_id(self.items.batch, key)
        return self.items.get(item_id) if item_id else None

    def commit(self, delivered: list[Any]) -> None:
        """Store the staged changes with the ``whale.todos`` offsets they were ``delivered`` at."""
        self.store.commit(self.items.batch, applied(self.store, delivered))

    def rollback(self) -> None:
        self.items.batch.staged.clear()

    def merge_key(self, event: CloudEvent) -> str:
        template = self._settings.merge_keys.get(event.type)
        rendered = None
        if template:
            try:
                rendered = templating.render(template, event_context(event)).strip()
            except templating.TemplateError as exc:
                log.warning("merge_key_template_failed", type=event.type, error=str(exc))
        if alert_state(event) is not None:
            return incidents.alert_key(event, rendered)
        return f"{event.type}|{rendered if rendered else event.subject or ''}"

    def ignored(self, event: CloudEvent) -> bool:
        if event.extensions.get("replaymode") == "dry":  # a dry-run replay opens nothing
            return True
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
            title = incident_title(event)
            details, kind, origin = event.data, event.type, "unhandled"
            seen_id = event.id
        ref = event_ref(event)
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
        item = new_item(event, key=key, title=title, kind=kind, origin=origin, details=details)
        item["seen"] = [seen_id]
        self.load(item)
        return Change(item, CREATED, "created")

    @property
    def seen_limit(self) -> int:
        return self._settings.seen_limit

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
        if (current["status"] == "resolved") != (op == "reopen") and op != "comment":
            reason = "not resolved" if op == "reopen" else "already resolved"
            log.warning("todo_command_refused", todo_id=current["id"], op=op, reason=reason)
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
        elif op == "update":
            work.update(item, data, by, event, item["updated_at"])
        elif op == "reopen":
            work.reopen(item, by, comment, event, self.policy, datetime.now(UTC))
        self.load(item)
        return Change(item, kind, op, by)

    def resolve_key(self, event: CloudEvent, wanted: Mapping[str, Any]) -> Change | None:
        """Resolve the open item of ``wanted["key"]`` (e.g. an answered approval's), if there is one."""
        current = self.open_item(str(wanted.get("key", "")))
        if current is None:
            return None
        data = {
            "todo_id": current["id"],
            "op": "resolve",
            "by": wanted.get("by"),
            "comment": wanted.get("resolution"),
        }
        return self.command(event.model_copy(update={"type": CHANGE_REQUESTED, "data": data}))

    def decide(self, event: CloudEvent, handled: bool, *, candidate: bool = True) -> Change | None:
        """The whole decision for one consumed event (``handled``: some enabled rule matches;
        ``candidate``: the event may become a to-do when unhandled, i.e. it came from ``whale.events``),
        with the item's work fields (:mod:`whale_event_center.todo_work`) kept in step."""
        change = self._decide(event, handled, candidate=candidate)
        if change is not None:
            work.after(change, event, self.policy)
            self.load(change.item)
        return change

    def _decide(self, event: CloudEvent, handled: bool, *, candidate: bool = True) -> Change | None:
        if event.type == CHANGE_REQUESTED:
            return self.command(event)
        if event.type == REQUESTED:
            return self.signal(event, event.data if isinstance(event.data, Mapping) else {})
        output = event.data.get("output") if isinstance(event.data, Mapping) else None
        if isinstance(output, Mapping) and isinstance(output.get("todo_request"), Mapping):
            return self.signal(event, output["todo_request"])
        if isinstance(output, Mapping) and isinstance(output.get("todo_resolve"), Mapping):
            return self.resolve_key(event, output["todo_resolve"])
        if not candidate:
            return incidents.notice(self, event) if event.type in incidents.NOTICES else None
        if self.ignored(event):
            return None
        if alert_state(event) is not None:
            return incidents.alert(self, event, handled)
        return None if handled else self.signal(event)


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

    def __init__(
        self,
        settings: Settings,
        producer: Any,
        rules: RuleSet,
        book: TodoBook,
        enricher: Enricher = NO_ENRICHMENT,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._rules = rules
        self._book = book
        self._enricher = enricher
        self.lock = asyncio.Lock()  # the book's staged batch: one batch or escalation sweep at a time

    async def handled(self, event: CloudEvent) -> bool:
        """Some enabled rule matches the event as the rule engine sees it (enriched)."""
        ctx = await asyncio.to_thread(self._enricher.context, event)
        return bool(self._rules.match(ctx))

    async def handle(self, received: Any) -> None:
        await self.handle_batch([received])

    async def handle_batch(self, batch: list[Any]) -> None:
        """Decide for every event in order, then write each touched item's latest state (compacted:
        only the last one matters) and every announcement, all in flight at once. If a write fails
        the book's staged changes are dropped, so the consumer's retry decides the batch again."""
        async with self.lock:
            await self._handle_batch(batch)

    async def _handle_batch(self, batch: list[Any]) -> None:
        self._book.rollback()
        changes: list[tuple[Change, CloudEvent]] = []
        for received in batch:
            event: CloudEvent = received.event
            candidate = received.topic == topics.EVENTS
            handled = candidate and not self._book.ignored(event) and await self.handled(event)
            change = self._book.decide(event, handled, candidate=candidate)
            if change is not None:
                changes.append((change, event))
        if not changes:
            self._book.commit([])  # episodes remembered (nothing was written to Kafka)
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
