"""Escalation when overdue: the to-do stage's periodic sweep of open items past their due time.

Every ``WHALE_TODO_OVERDUE_CHECK_SECONDS`` the sweep finds the open (or claimed) items whose
``due_at`` has passed and that were not yet escalated for that due time, writes each one with
``overdue_for`` = its ``due_at`` (and a history line) to ``whale.todos`` and emits
``whale.todo.overdue`` on ``whale.events`` (item id, title, assignee, priority, due time, seconds
late), where the rule engine matches it, so rules can route it to a chat notification or a page (the
stage itself ignores ``whale.*`` types). Once per item and due time: a new due
time (``PATCH /todos/{id}``, a reopen) arms it again. The sweep shares the stage's lock, so it never
interleaves with a batch of decisions.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from whale import topics
from whale.runtime import every
from whale.todos import OPEN_STATES
from whale_todo import work
from whale_todo.stage import TodoBook, record
from whale_todo.store import open_ids

log = structlog.get_logger(__name__)


def overdue(book: TodoBook, now: datetime) -> list[tuple[dict[str, Any], float]]:
    """Open items past their due time and not yet escalated for it, with how late (seconds)."""
    found = []
    for item_id in open_ids(book.store):
        item = book.items.get(item_id)
        late = None if item is None else work.overdue(item, now, OPEN_STATES)
        if item is not None and late is not None:
            found.append((item, late))
    return found


class Escalator:
    """Sweeps the book every ``every`` seconds; writes with ``producer`` under the stage's ``lock``."""

    def __init__(self, source: str, every: float, producer: Any, book: TodoBook, lock: asyncio.Lock) -> None:
        self._source = source
        self._every = every
        self._producer = producer
        self._book = book
        self._lock = lock

    async def sweep(self, now: datetime | None = None) -> int:
        """Escalate every item due for it; returns how many. A failed write drops the staged marks,
        so the next sweep tries them again (at least once)."""
        async with self._lock:
            self._book.rollback()
            found = overdue(self._book, now or datetime.now(UTC))
            if not found:
                return 0
            sends = []
            for item, late in found:
                marked, event = work.escalation(item, late, self._source)
                self._book.load(marked)
                sends.append(
                    self._producer.send(topics.TODOS, record(marked, self._source), key=marked["id"])
                )
                sends.append(self._producer.send(topics.EVENTS, event, key=marked["id"]))
            try:
                delivered = await asyncio.gather(*sends)
            except BaseException:
                self._book.rollback()
                raise
            self._book.commit(list(delivered))
            for item, late in found:
                log.info("todo_overdue", todo_id=item["id"], late_seconds=round(late, 1))
            return len(found)

    async def run(self, stop: asyncio.Event) -> None:
        """:meth:`sweep` until ``stop`` is set (Kafka unavailable: the next sweep escalates them)."""
        await every(self._every, self.sweep, stop, "todo_overdue_sweep")
