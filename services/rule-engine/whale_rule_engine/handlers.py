"""The rule engine's per-event work, called by the Faust agents of :mod:`whale_rule_engine.app`.

``on_events``: :func:`handle_event` decodes and matches one ``whale.events`` record; the matched
events of a batch are rendered together (:func:`finish_events`, one hop to the render thread) and
:func:`emit_planned` issues their requests, forwards, notices and dead letters. ``on_triggers``:
:func:`handle_trigger` spends a bucket token and requests or notifies. Every output is *issued* into
the event's sends (:mod:`whale_rule_engine.batches`), acknowledged with its batch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog

from whale import topics
from whale.binding import KafkaMessage, headers_from
from whale.enrichment import ENRICHMENT
from whale.errors import EventError
from whale.light_event import LightEvent, decode
from whale.logging import bound_event
from whale.rules.model import Rule
from whale_rule_engine import metrics
from whale_rule_engine.batches import Sends, issue
from whale_rule_engine.engine import (
    Failure,
    Trigger,
    dry_run_record,
    plan,
    render_failed_notice,
    throttled_notice,
)
from whale_rule_engine.outbound import request_message
from whale_rule_engine.runtime import Runtime
from whale_rule_engine.throttle import PARTITION, decide

log = structlog.get_logger(__name__)


@dataclass
class Matched:
    """A ``whale.events`` record that matched rules: rendered with its batch (one thread hop)."""

    message: Any
    raw: KafkaMessage
    event: LightEvent
    ctx: dict[str, Any]
    rules: list[Rule]
    sends: Sends


async def handle_event(runtime: Runtime, message: Any, sends: Sends) -> Matched | None:
    """Decode and match one ``whale.events`` record; dead-letter an unreadable one (issued into
    ``sends``). What matched is returned, to render with its batch (:func:`finish_events`)."""
    raw = KafkaMessage(message.key, message.value, headers_from(message.headers))
    try:
        event = decode(raw)  # plain values, no model (see whale/light_event.py)
    except EventError as exc:
        metrics.child(metrics.EVENTS, "dead_lettered").inc()
        issue(sends, runtime.dead_letter(raw, f"unreadable: {exc}", origin=message))
        return None
    ctx = event.context()  # what Enricher.context builds, from the light event
    if runtime.enricher.waits:  # lookups may wait on a CMDB
        ctx[ENRICHMENT] = await asyncio.to_thread(runtime.enricher.enrich, event)
    else:  # from memory: a thread hop would cost more than the lookups
        ctx[ENRICHMENT] = runtime.enricher.enrich(event)
    for problem in ctx[ENRICHMENT].get("errors", ()):
        metrics.ENRICH_FAILED.labels(provider=problem["provider"]).inc()
    started = time.perf_counter()
    matched = runtime.rules.match(ctx)
    metrics.MATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.child(metrics.EVENTS, "matched" if matched else "unmatched").inc()
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
        record = dry_run_record(event.full(), found, failures, source=runtime.settings.source)
        issue(sends, runtime.producer.send(topics.RESULTS, record, key=event.id))
        log.info("dry_run_recorded", would_request=len(found), failures=len(failures))
        return
    for rule in item.rules:
        metrics.child(metrics.MATCHES, rule.id).inc()
    for failure in failures:
        kind = "render_limit" if failure.limit else "render"
        dead = runtime.dead_letter(
            item.raw, failure.reason, origin=item.message, rule_id=failure.rule_id, kind=kind
        )
        issue(sends, dead)
        notice = render_failed_notice(
            event.full(), failure, source=runtime.settings.source, enrichment=item.ctx[ENRICHMENT]
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
    metrics.child(metrics.THROTTLED, trigger.rule_id).inc()
    log.info("throttled", rule_id=trigger.rule_id, key=trigger.throttle_key, suppressed=decision.suppressed)


async def emit_request(runtime: Runtime, trigger: Trigger, sends: Sends) -> None:
    pool = trigger.target["pool"]
    await runtime.ensure_pool(pool)
    request = request_message(trigger, source=runtime.settings.source)
    issue(sends, runtime.producer.send_message(topics.actions_topic(pool), request))
    metrics.child(metrics.REQUESTED, trigger.rule_id).inc()
    log.info("action_requested", rule_id=trigger.rule_id, idempotency_key=trigger.idempotency_key)
