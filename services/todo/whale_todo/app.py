"""``whale run todo``: the to-do stage's process (the decisions are in :mod:`whale_todo.stage`).

It catches the local store up with ``whale.todos``, follows ``whale.rules``, then consumes
``whale.events`` and ``whale.results``, escalates overdue items and expires closed ones past the
retention (:mod:`whale_todo.expiry`); ``/healthz``, ``/readyz`` and ``/metrics`` are served on
``WHALE_TODO_PORT`` when it is set.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import structlog

from whale import topics
from whale.admin import ensure_topics
from whale.compacted import CompactedView
from whale.consumer import EventConsumer
from whale.enrichment import build
from whale.health import serve_health
from whale.logging import configure_logging
from whale.producer import EventProducer
from whale.runtime import every, run
from whale.todos import OPEN_STATES
from whale_todo import metrics
from whale_todo.escalation import Escalator
from whale_todo.expiry import Expirer
from whale_todo.settings import Settings
from whale_todo.stage import TodoBook, TodoStage, load_rules
from whale_todo.store import TodoLoader

log = structlog.get_logger(__name__)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    enricher = build(settings.enrich)  # providers validated at start-up
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
    stage = TodoStage(settings, producer, rules, book, enricher)
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
    if settings.port is not None:

        async def is_ready() -> bool:
            return ready.is_set()

        server = await serve_health(
            settings.host,
            settings.port,
            {"consumer": is_ready},
            registry=metrics.registry(),
        )
    task = asyncio.create_task(consumer.run())
    escalator = Escalator(settings.source, settings.overdue_check_seconds, producer, book, stage.lock)
    escalating = asyncio.create_task(escalator.run(stop))
    expirer = Expirer(settings.closed_retention, producer, book, stage.lock)
    expiring = asyncio.create_task(every(settings.sweep_interval, expirer.sweep, stop, "todo_expiry_sweep"))
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
    await escalating
    await expiring
    await rules_view.stop()
    book.store.close()
    if server is not None:
        server.close()
        await server.wait_closed()
    await asyncio.to_thread(producer.close, 10)


def main(argv: list[str]) -> int:
    """``whale run todo``: the to-do stage."""
    parser = argparse.ArgumentParser(prog="whale run todo", description="the to-do stage")
    parser.add_argument("--rules-dir", type=Path, help="rules directory (else WHALE_RULES_DIR)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.rules_dir is not None:
        settings.whale.rules_dir = args.rules_dir
    configure_logging(settings.whale, service="todo")
    return run(lambda stop: serve(settings, stop), settings.whale.event_loop)
