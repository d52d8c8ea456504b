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
from typing import Any, Literal

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale import topics
from whale.cloudevent import CloudEvent, format_time
from whale.correlation import caused_by, correlation_id
from whale.rules import templating
from whale.rules.paths import event_context
from whale.rules.ruleset import RuleSet
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale_event_center.todo_store import StoredItems, TodoLoader, applied, open_id, put_item

log = structlog.get_logger(__name__)

SOURCE = "whale/todo"
SAVED = "whale.todo.saved"
CREATED = "whale.todo.created"
UPDATED = "whale.todo.updated"
RESOLVED = "whale.todo.resolved"
REQUESTED = "whale.todo.requested"
CHANGE_REQUESTED = "whale.todo.change.requested"
OPS = ("claim", "unclaim", "resolve", "comment")
OPEN_STATES = ("open", "claimed")


class TodoSettings(BaseSettings):
    """Settings of the to-do stage (env prefix ``WHALE_TODO_``)."""

    model_config = SettingsConfigDict(env_prefix="WHALE_TODO_", extra="ignore")

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    group: str = "whale-todo"
    source: str = Field(
        default=SOURCE, description="CloudEvents source of the stage's records and announcements"
    )
    offset_reset: Literal["earliest", "latest"] = Field(
        default="latest",
        description="where a brand-new consumer group starts (latest: no to-dos for history)",
    )
    merge_keys: dict[str, str] = Field(
        default_factory=dict, description="event type -> merge-key template (default: type + subject)"
    )
    ignore_type_prefixes: list[str] = Field(
        default_factory=lambda: ["whale."], description="platform event types that never become to-dos"
    )
    seen_limit: int = Field(default=50, ge=1, description="event ids remembered per item (redelivery)")
    state: StoreSettings = Field(default_factory=StoreSettings, description="local store (WHALE_STATE_*)")
    health_host: str = "127.0.0.1"
    health_port: int | None = Field(default=None, description="serve /metrics, /healthz, /readyz here")


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
    """The items (on disk: :mod:`whale_event_center.todo_store`) and the decisions. Changes are
    staged until :meth:`commit` (after Kafka acknowledged them) or dropped by :meth:`rollback`."""

    def __init__(self, settings: TodoSettings, store: LocalStore) -> None:
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

    def __init__(self, settings: TodoSettings, producer: Any, rules: RuleSet, book: TodoBook) -> None:
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
            log.info(
                "todo_changed", todo_id=change.item["id"], change=change.change, count=change.item["count"]
            )


async def serve(settings: TodoSettings, stop: asyncio.Event) -> None:
    from whale.admin import ensure_topics
    from whale.compacted import CompactedView
    from whale.consumer import EventConsumer
    from whale.health import serve_health
    from whale.metrics import CONSUMER, process_registry
    from whale.producer import EventProducer

    await asyncio.to_thread(ensure_topics, settings.whale)
    producer = EventProducer(settings.whale, client_id="whale-todo")
    rules = load_rules(settings.whale.rules_dir)
    rules_view = CompactedView(settings.whale, topics.RULES, on_change=rules.apply_record)
    loader = TodoLoader(settings.whale, settings.state, OPEN_STATES)
    await rules_view.start()
    await loader.start()  # the local store catches up with whale.todos, then stops following
    await loader.stop()
    assert loader.store is not None
    book = TodoBook(settings, loader.store)
    stage = TodoStage(settings, producer, rules, book)
    consumer = EventConsumer(
        settings.whale,
        group_id=settings.group,
        topics=[topics.EVENTS, topics.RESULTS],
        producer=producer,
        batch_handler=stage.handle_batch,
        auto_offset_reset=settings.offset_reset,
    )
    ready = asyncio.Event()
    server = None
    if settings.health_port is not None:

        async def is_ready() -> bool:
            return ready.is_set()

        server = await serve_health(
            settings.health_host,
            settings.health_port,
            {"consumer": is_ready},
            registry=process_registry(CONSUMER),
        )
    task = asyncio.create_task(consumer.run())
    ready.set()
    log.info(
        "todo_stage_started",
        restored=loader.read,
        rebuilt=book.store.rebuilt,
        rules=sum(rule.enabled for rule in rules.all()),
    )
    await stop.wait()
    consumer.stop()
    await task
    await rules_view.stop()
    book.store.close()
    if server is not None:
        server.close()
        await server.wait_closed()
    await asyncio.to_thread(producer.close, 10)


def main(argv: list[str]) -> int:
    """``whale run todo``: the to-do stage."""
    import argparse

    from whale.logging import configure_logging
    from whale.runtime import run

    parser = argparse.ArgumentParser(prog="whale run todo", description="the to-do stage")
    parser.add_argument("--rules-dir", type=Path, help="rules directory (else WHALE_RULES_DIR)")
    args = parser.parse_args(argv)
    settings = TodoSettings()
    if args.rules_dir is not None:
        settings.whale.rules_dir = args.rules_dir
    configure_logging(settings.whale, service="todo")
    return run(lambda stop: serve(settings, stop))
