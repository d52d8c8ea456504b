"""``whale run rule-engine``: the Faust worker.

Two agents. ``on_events`` reads ``whale.events`` (raw bytes, decoded with the CloudEvents Kafka
binding), matches the event against the rule index, renders each matched rule's params and throttle
key (the per-event work is :mod:`whale_rule_engine.handlers`), and forwards throttled triggers to an internal repartition topic keyed by (rule, rendered key);
poison messages and render failures go to ``whale.dlq`` with the reason. ``on_triggers`` owns the
token buckets of its partitions in a changelog-backed Faust table, so a bucket is exact across
workers and survives restarts, and emits ``whale.action.requested`` on the pool's actions topic or
``whale.rule.throttled`` on ``whale.results``. Rules come from the rules directory and, live, from
the compacted ``whale.rules`` topic. ``/metrics``, ``/healthz`` and ``/readyz`` are served on
``WHALE_RULE_ENGINE_PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from pathlib import Path
from typing import Any

import faust
import structlog

from whale import topics
from whale.admin import ensure_topics
from whale.compacted import CompactedView
from whale.enrichment import build
from whale.errors import ConfigError, WhaleError
from whale.eventloop import install_policy
from whale.health import serve_health
from whale.logging import configure_logging, library_logging
from whale.producer import EventProducer
from whale.rules.ruleset import RuleSet
from whale.slots import claim_slot
from whale_rule_engine import metrics
from whale_rule_engine.batches import Pending, issue
from whale_rule_engine.broker import broker_credentials, broker_urls
from whale_rule_engine.handlers import Matched, finish_events, handle_event, handle_trigger
from whale_rule_engine.offsets import seed_offsets
from whale_rule_engine.recovery import TableManager
from whale_rule_engine.runtime import Runtime
from whale_rule_engine.settings import Settings
from whale_rule_engine.table_restore import TableRestore
from whale_rule_engine.throttle import sweep

log = structlog.get_logger(__name__)
TABLE = "throttle-buckets"  # the table of token buckets; its changelog: <app id>-throttle-buckets-changelog


def build_app(runtime: Runtime) -> faust.App:
    """The Faust app with its topics, the bucket table and the two agents."""
    settings = runtime.settings
    # the throttle table's RocksDB: a slot of its own per worker process (held until it exits)
    datadir = claim_slot(settings.state.dir / f"faust-{settings.app_id}").path
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.whale),
        broker_credentials=broker_credentials(settings.whale.kafka),
        datadir=str(datadir),
        store=settings.table_store,  # rocksdb://: restarts read only the changelog after its offsets
        TableManager=TableManager,  # seeks stream partitions before reading them (see recovery.py)
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",  # whale.events is positioned by seed_offsets()
        producer_acks=-1,
        web_enabled=False,
        table_standby_replicas=settings.standby_replicas,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout,  # a killed worker's partitions move on soon
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 5),
    )
    events = app.topic(topics.EVENTS, key_serializer="raw", value_serializer="raw", allow_empty=True)
    triggers = app.topic(
        repartition_topic(settings),
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
    )
    mib = 1024 * 1024
    table_options = {  # per partition; Faust's defaults are a 2 GiB block cache and 3 x 64 MiB buffers
        "block_cache_size": settings.state.cache_mb * mib,
        "block_cache_compressed_size": mib,
        "write_buffer_size": settings.state.write_buffer_mb * mib,
        "max_write_buffer_number": 2,
    }
    buckets = app.Table(
        TABLE,
        partitions=settings.partitions,
        options=table_options if settings.table_store.startswith("rocksdb") else None,
    )

    last_sweep: dict[int, float] = {}

    @app.agent(events)
    async def on_events(stream: Any) -> None:
        # offsets are committed only after the outputs of their events are acknowledged (batches.py)
        failed = functools.partial(runtime.failed, prefix="internal error")
        matched: list[Matched] = []  # the held events that matched, rendered together at the settle

        async def render_matched() -> None:
            batch = matched[:]  # taken before any await: exactly the batch being settled
            matched.clear()
            await finish_events(runtime, batch, triggers)

        pending = Pending(settings.batch_size, failed, linger=settings.batch_linger, before=render_matched)
        async for record in stream.events():
            sends = pending.hold(record)
            try:
                found = await handle_event(runtime, record.message, sends)
            except Exception as exc:  # nothing crashes the worker: the event is dead-lettered
                log.exception("event_failed")
                issue(sends, runtime.failed(record.message, exc, "internal error"))
            else:
                if found is not None:
                    matched.append(found)
            if pending.due(stream):
                await pending.settle()

    @app.agent(triggers)
    async def on_triggers(stream: Any) -> None:
        failed = functools.partial(runtime.failed, prefix="throttle stage failed")
        pending = Pending(settings.batch_size, failed, linger=settings.batch_linger)
        async for record in stream.events():  # the current event: the table's partition
            sends = pending.hold(record)
            try:
                await handle_trigger(runtime, record.message, buckets, sends)
            except Exception as exc:
                log.exception("trigger_failed")
                issue(sends, runtime.failed(record.message, exc, "throttle stage failed"))
            partition, now = record.message.partition, time.time()
            if now - last_sweep.get(partition, 0.0) >= settings.sweep_interval:
                last_sweep[partition] = now
                try:  # the tombstones go to the current event's partition, whose buckets these are
                    expired = sweep(buckets, partition=partition, now=now, grace=settings.bucket_grace)
                except Exception:  # the buckets stay; the next sweep tries again
                    log.exception("bucket_sweep_failed", partition=partition)
                else:
                    metrics.BUCKETS_EXPIRED.inc(expired)
            if pending.due(stream):
                await pending.settle()

    async def health() -> None:
        await start_health(runtime, app)

    app.task(health)

    return app


async def start_health(runtime: Runtime, app: faust.App) -> None:
    """Serve /healthz, /readyz and /metrics (once: the table restore starts it before the app)."""
    if runtime.health_server is not None:
        return
    settings = runtime.settings

    async def ready() -> bool:
        """Assigned partitions, not rebalancing, and the fetcher alive (it stops on e.g. a codec error)."""
        try:
            return bool(app.consumer.assignment()) and not app.rebalancing and not app._fetcher.crashed
        except Exception:
            return False

    runtime.health_server = await serve_health(
        settings.host, settings.port, {"kafka": ready}, registry=metrics.registry()
    )
    log.info("health_listening", host=settings.host, port=settings.port)


# ---------------------------------------------------------------------- start-up
async def start_views(runtime: Runtime) -> None:
    """Catalogue, schemas and rules views, caught up before the worker starts."""
    whale = runtime.settings.whale
    catalog = CompactedView(whale, topics.CATALOG)
    schemas = CompactedView(whale, topics.SCHEMAS)
    rules = CompactedView(whale, topics.RULES, on_change=runtime.rules.apply_record)
    for view in (catalog, schemas, rules):
        await view.start()
        runtime.views.append(view)
    runtime.catalog = catalog
    rules_dir = whale.rules_dir
    if rules_dir is not None:
        if not rules_dir.is_dir():
            raise ConfigError(
                f"rules directory {rules_dir} does not exist or is not a directory", field="rules_dir"
            )
        report = runtime.rules.load_directory(rules_dir, catalog, schemas)
        for where, problem in report.problems:
            log.error("rule_file_refused", file=where, error=problem)
        for where, warning in report.warnings:
            log.warning("rule_file_warning", file=where, warning=warning)
        log.info("rules_loaded", directory=str(rules_dir), rules=len(report.rules))


def repartition_topic(settings: Settings) -> str:
    """Where throttled triggers go, keyed by (rule, rendered key), to the table's partition."""
    return f"{settings.app_id}-throttle-repartition"


def internal_topics(app: faust.App, settings: Settings) -> list[topics.TopicSpec]:
    """The worker's own topics (the throttle repartition topic, the table's changelog), created before
    it joins its group: a topic the group subscribes to that is missing when the group is assigned
    is left out of the assignment until the consumer's next metadata refresh (five minutes), so the
    first throttled triggers of a new deployment would wait that long (seen in ``whale up``)."""
    repartition = repartition_topic(settings)
    changelog = app.tables[TABLE].changelog_topic.get_topic_name()
    return [
        topics.TopicSpec(repartition, settings.partitions, "Throttled triggers keyed by (rule, key)."),
        topics.TopicSpec(changelog, settings.partitions, "The throttle table's changelog.", compacted=True),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whale run rule-engine", description=__doc__.splitlines()[0])
    parser.add_argument("--rules-dir", type=Path, help="directory of rule YAML files (else WHALE_RULES_DIR)")
    parser.add_argument("--port", type=int, help="port of /metrics, /healthz and /readyz")
    parser.add_argument("--app-id", help="Faust app id (consumer group)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    overrides = {k: v for k, v in {"port": args.port, "app_id": args.app_id}.items() if v}
    settings = Settings(**overrides)
    if args.rules_dir:
        settings.whale.rules_dir = args.rules_dir
    configure_logging(settings.whale, service="rule-engine")
    try:
        ensure_topics(settings.whale)
        seed_offsets(settings.whale, group=settings.app_id, topic=topics.EVENTS, reset=settings.offset_reset)
    except WhaleError as exc:
        log.error("startup_failed", error=str(exc))
        return 1
    try:
        enricher = build(settings.enrich)  # providers validated at start-up
    except WhaleError as exc:
        log.error("startup_failed", error=str(exc))
        return 1
    producer = EventProducer(settings.whale, client_id=f"{settings.app_id}-producer")
    runtime = Runtime(
        settings=settings, producer=producer, rules=RuleSet(on_size=metrics.RULES.set), enricher=enricher
    )
    install_policy(settings.whale.event_loop)  # the views' loop and Faust's worker loop
    try:
        asyncio.run(start_views(runtime))
        app = build_app(runtime)
        ensure_topics(settings.whale, internal_topics(app, settings))
        logging_config, handlers = library_logging()
        app.conf.loghandlers = handlers  # faust.Worker passes the app's own to mode's Worker
        restore = TableRestore(
            app.tables[TABLE],
            settings.whale.kafka_config(),
            before=functools.partial(start_health, runtime, app),
        )
        worker = faust.Worker(
            app,
            restore,  # started before the app: the table's store caught up, /healthz served meanwhile
            loglevel=settings.log_level.upper(),
            quiet=True,
            logging_config=logging_config,
            redirect_stdouts=False,
        )
        try:
            worker.execute_from_commandline()
        except SystemExit as stop:
            return int(stop.code or 0)
        return 0
    except WhaleError as exc:
        log.error("startup_failed", error=str(exc))
        return 1
    finally:
        runtime.render_pool.shutdown(wait=False, cancel_futures=True)
        producer.close()
