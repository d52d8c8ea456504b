"""``whale run rule-engine``: the Faust worker.

Two agents. ``on_events`` reads ``whale.events`` (raw bytes, decoded with the CloudEvents Kafka
binding), matches the event against the rule index, renders each matched rule's params and throttle
key, and forwards throttled triggers to an internal repartition topic keyed by (rule, rendered key);
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import structlog

from whale import topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.consumer import write_dead_letter
from whale.enrichment import ENRICHMENT, NO_ENRICHMENT, Enricher, build
from whale.errors import BindingError, ConfigError, WhaleError
from whale.eventloop import install_policy
from whale.health import HealthServer, serve_health
from whale.logging import bound_event, configure_logging, library_logging
from whale.producer import EventProducer
from whale.rules.model import Rule
from whale.rules.ruleset import RuleSet
from whale.store import claim_slot
from whale_rule_engine import metrics
from whale_rule_engine.batches import Pending, Sends, issue
from whale_rule_engine.broker import broker_credentials, broker_urls
from whale_rule_engine.engine import (
    Failure,
    Trigger,
    action_request,
    dry_run_record,
    plan,
    render_failed_notice,
    throttled_notice,
)
from whale_rule_engine.offsets import seed_offsets
from whale_rule_engine.recovery import TableManager
from whale_rule_engine.settings import Settings
from whale_rule_engine.throttle import PARTITION, decide, sweep

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """What the agents share: settings, the producer, the live rules and the catalogue view."""

    settings: Settings
    producer: EventProducer
    rules: RuleSet
    catalog: CompactedView | None = None
    enricher: Enricher = NO_ENRICHMENT
    views: list[CompactedView] = field(default_factory=list)
    ensured_pools: set[str] = field(default_factory=lambda: {topics.DEFAULT_POOL})
    health_server: HealthServer | None = None
    # renders run here, off the event loop: /healthz, heartbeats and commits go on while a rule
    # spends its render budget (every sandbox operation is bounded, so the thread never holds the
    # interpreter for long; see whale.rules.limits)
    render_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
    )

    async def dead_letter(
        self, message: KafkaMessage, reason: str, *, origin: Any, rule_id: str = "", kind: str = ""
    ) -> None:
        await write_dead_letter(
            self.producer,
            message,
            reason=reason,
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            group=self.settings.app_id,
            headers=[("whale_dlq_rule", rule_id.encode())] if rule_id else (),
        )
        metrics.DEAD_LETTERED.labels(reason=kind or ("render" if rule_id else "unreadable")).inc()
        if rule_id:
            log.warning("render_failed", rule_id=rule_id, reason=reason)

    async def failed(self, message: Any, exc: BaseException, prefix: str) -> None:
        """Dead-letter the Faust ``message`` whose handling (or one of its sends) failed with ``exc``."""
        raw = KafkaMessage(message.key, message.value, headers_from(message.headers))
        await self.dead_letter(raw, f"{prefix}: {type(exc).__name__}: {exc}", origin=message)

    async def ensure_pool(self, pool: str) -> None:
        if pool in self.ensured_pools:
            return
        spec = topics.pool_topic_spec(pool)
        await asyncio.to_thread(ensure_topics, self.settings.whale, [spec])
        self.ensured_pools.add(pool)


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
        f"{settings.app_id}-throttle-repartition",
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
        "throttle-buckets",
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

    async def ready() -> bool:
        """Assigned partitions, not rebalancing, and the fetcher alive (it stops on e.g. a codec error)."""
        try:
            return bool(app.consumer.assignment()) and not app.rebalancing and not app._fetcher.crashed
        except Exception:
            return False

    async def health() -> None:
        runtime.health_server = await serve_health(
            settings.host, settings.port, {"kafka": ready}, registry=metrics.registry()
        )
        log.info("health_listening", host=settings.host, port=settings.port)

    app.task(health)

    return app


@dataclass
class Matched:
    """A ``whale.events`` record that matched rules: rendered with its batch (one thread hop)."""

    message: Any
    raw: KafkaMessage
    event: CloudEvent
    ctx: dict[str, Any]
    rules: list[Rule]
    sends: Sends


async def handle_event(runtime: Runtime, message: Any, sends: Sends) -> Matched | None:
    """Decode and match one ``whale.events`` record; dead-letter an unreadable one (issued into
    ``sends``). What matched is returned, to render with its batch (:func:`finish_events`)."""
    raw = KafkaMessage(message.key, message.value, headers_from(message.headers))
    try:
        event = from_kafka(raw)
    except BindingError as exc:
        metrics.EVENTS.labels(outcome="dead_lettered").inc()
        issue(sends, runtime.dead_letter(raw, f"unreadable: {exc}", origin=message))
        return None
    if runtime.enricher.waits:  # lookups may wait on a CMDB
        ctx = await asyncio.to_thread(runtime.enricher.context, event)
    else:  # from memory: a thread hop would cost more than the lookups
        ctx = runtime.enricher.context(event)
    for problem in ctx[ENRICHMENT].get("errors", ()):
        metrics.ENRICH_FAILED.labels(provider=problem["provider"]).inc()
    started = time.perf_counter()
    matched = runtime.rules.match(ctx)
    metrics.MATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.EVENTS.labels(outcome="matched" if matched else "unmatched").inc()
    if not matched:
        return None
    return Matched(message, raw, event, ctx, [r for r in matched if r.enabled], sends)


Planned = tuple[list[Trigger], list[Failure]] | BaseException


def plan_all(runtime: Runtime, batch: list[Matched]) -> list[Planned]:
    """:func:`plan` for every event of ``batch`` (run in the render thread; each rule of each event
    keeps its own sandbox budget). An unexpected error is returned for its event alone."""
    out: list[Planned] = []
    for item in batch:
        try:
            out.append(
                plan(
                    item.rules,
                    item.event,
                    catalog=runtime.catalog,
                    timeout=runtime.settings.render_timeout,
                    max_output=runtime.settings.max_param_bytes,
                    ctx=item.ctx,
                )
            )
        except Exception as exc:
            out.append(exc)
    return out


async def finish_events(runtime: Runtime, batch: list[Matched], triggers: Any) -> None:
    """Render ``batch`` in one hop to the render thread, then, event by event in order, emit or
    forward its triggers and dead-letter its failures (issued into each event's sends)."""
    if not batch:
        return
    loop = asyncio.get_running_loop()
    planned = await loop.run_in_executor(runtime.render_pool, plan_all, runtime, batch)
    for item, result in zip(batch, planned, strict=True):
        try:
            if isinstance(result, BaseException):
                raise result
            with bound_event(item.event):
                await emit_planned(runtime, item, *result, triggers=triggers)
        except Exception as exc:  # nothing crashes the worker: the event is dead-lettered
            log.exception("event_failed")
            issue(item.sends, runtime.failed(item.message, exc, "internal error"))


async def emit_planned(
    runtime: Runtime, item: Matched, found: list[Trigger], failures: list[Failure], *, triggers: Any
) -> None:
    """One event's rendered triggers and render failures: requests, forwards, notices, dead letters."""
    event, sends = item.event, item.sends
    if event.extensions.get("replaymode") == "dry":  # a dry-run replay: record, request nothing
        record = dry_run_record(event, found, failures, source=runtime.settings.source)
        issue(sends, runtime.producer.send(topics.RESULTS, record, key=event.id))
        log.info("dry_run_recorded", would_request=len(found), failures=len(failures))
        return
    for rule in item.rules:
        metrics.MATCHES.labels(rule=rule.id).inc()
    for failure in failures:
        kind = "render_limit" if failure.limit else "render"
        dead = runtime.dead_letter(
            item.raw, failure.reason, origin=item.message, rule_id=failure.rule_id, kind=kind
        )
        issue(sends, dead)
        notice = render_failed_notice(
            event, failure, source=runtime.settings.source, enrichment=item.ctx[ENRICHMENT]
        )
        issue(sends, runtime.producer.send(topics.RESULTS, notice, key=failure.rule_id))
    for trigger in found:
        if trigger.throttle_key is None:
            await emit_request(runtime, trigger, sends)
        else:  # Faust's producer: enqueued here, flushed by the commit
            await triggers.send(key=trigger.bucket.encode(), value=trigger.to_bytes())


async def handle_trigger(runtime: Runtime, message: Any, buckets: Any, sends: Sends) -> None:
    """Spend a token of the trigger's bucket (recording its partition for the sweep); issue the
    request or the throttle notice into ``sends``."""
    trigger = Trigger.from_bytes(message.value)
    state = buckets.get(trigger.bucket)
    decision = decide(
        state,
        capacity=trigger.capacity,
        refill_per_second=trigger.refill_per_second,
        now=time.time(),
        idempotency_key=trigger.idempotency_key,
        remember=runtime.settings.recent_keys,
    )
    if decision.state != state:
        buckets[trigger.bucket] = {**decision.state, PARTITION: message.partition}
    if decision.allowed:
        await emit_request(runtime, trigger, sends)
        return
    notice = throttled_notice(trigger, decision, source=runtime.settings.source)
    issue(sends, runtime.producer.send(topics.RESULTS, notice, key=trigger.rule_id))
    metrics.THROTTLED.labels(rule=trigger.rule_id).inc()
    log.info("throttled", rule_id=trigger.rule_id, key=trigger.throttle_key, suppressed=decision.suppressed)


async def emit_request(runtime: Runtime, trigger: Trigger, sends: Sends) -> None:
    pool = trigger.target["pool"]
    await runtime.ensure_pool(pool)
    request = action_request(trigger, source=runtime.settings.source)
    issue(sends, runtime.producer.send(topics.actions_topic(pool), request, key=trigger.idempotency_key))
    metrics.REQUESTED.labels(rule=trigger.rule_id).inc()
    log.info("action_requested", rule_id=trigger.rule_id, idempotency_key=trigger.idempotency_key)


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
        logging_config, handlers = library_logging()
        app.conf.loghandlers = handlers  # faust.Worker passes the app's own to mode's Worker
        worker = faust.Worker(
            app,
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
