"""What the worker does with an event, without Kafka: match, render, and build what to emit.

The live rules are a :class:`whale.rules.ruleset.RuleSet` (rules directory + the compacted
``whale.rules`` topic), shared with the to-do stage and ``whale rules explain``.
:func:`plan` turns one event into :class:`Trigger` s (rendered params, throttle key, idempotency key)
and :class:`Failure` s (render errors, with the rule and the reason).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from whale.cloudevent import CloudEvent, format_time
from whale.correlation import caused_by
from whale.enrichment import ENRICHMENT
from whale.incidents import reference
from whale.light_event import LightEvent, model
from whale.rules import templating
from whale.rules.model import Lookup, Rule
from whale.rules.paths import event_context
from whale.rules.references import find_target, params_problems
from whale_rule_engine.throttle import Decision

log = structlog.get_logger(__name__)
ACTION_REQUESTED = "whale.action.requested"
RULE_THROTTLED = "whale.rule.throttled"
RENDER_FAILED = "whale.rule.render_failed"
RULE_DRY_RUN = "whale.rule.dryrun"
_REQUEST_NS = uuid.UUID("6f1c2a52-5d0e-4c43-9a51-2b1b0c7e8a11")


def idempotency_key(rule_id: str, version: int, source: str, event_id: str) -> str:
    """The same for the same (rule, version, event) however often the event is redelivered."""
    digest = hashlib.sha256(json.dumps([rule_id, version, source, event_id]).encode()).hexdigest()
    return f"{rule_id}:{version}:{digest[:32]}"


@dataclass(frozen=True, slots=True)
class Trigger:
    """A match that rendered: what to request, and which bucket decides whether it may."""

    rule_id: str
    rule_version: int
    target: dict[str, str]
    params: Any
    throttle_key: str | None
    capacity: int
    refill_per_second: float
    idempotency_key: str
    event: CloudEvent | LightEvent  # the matched event (light in the worker, see whale/light_event.py)
    enrichment: dict[str, Any] | None = None  # what enrichment added (whale.enrichment), shown on the request

    @property
    def bucket(self) -> str:
        """The table key: per rule and rendered key (the repartition key)."""
        return f"{self.rule_id}\x1f{self.throttle_key}"

    def to_bytes(self) -> bytes:
        doc = {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "target": self.target,
            "params": self.params,
            "throttle_key": self.throttle_key,
            "capacity": self.capacity,
            "refill_per_second": self.refill_per_second,
            "idempotency_key": self.idempotency_key,
            "event": self.event.to_structured(),
            "enrichment": self.enrichment,
        }
        return json.dumps(doc, separators=(",", ":"), default=str).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Trigger:
        doc = json.loads(raw)
        return cls(
            rule_id=doc["rule_id"],
            rule_version=int(doc["rule_version"]),
            target=dict(doc["target"]),
            params=doc["params"],
            throttle_key=doc["throttle_key"],
            capacity=int(doc["capacity"]),
            refill_per_second=float(doc["refill_per_second"]),
            idempotency_key=doc["idempotency_key"],
            event=LightEvent.from_structured(doc["event"]),  # written by to_bytes: not validated again
            enrichment=doc.get("enrichment"),
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """A matched rule that could not be turned into a request for this event; ``limit`` when a
    sandbox limit (render time, steps, sizes) refused it."""

    rule_id: str
    rule_version: int
    reason: str
    limit: bool = False


def plan(
    rules: list[Rule],
    event: CloudEvent | LightEvent,
    *,
    catalog: Lookup | None = None,
    timeout: float = templating.DEFAULT_TIMEOUT,
    max_output: int = templating.MAX_OUTPUT,
    ctx: Mapping[str, Any] | None = None,
) -> tuple[list[Trigger], list[Failure]]:
    """Render every matched rule's params and throttle key for ``event`` (in ``ctx``, its enriched
    context, else its plain one); each rule's templates together get ``timeout`` seconds and one
    sandbox budget (see :mod:`whale.rules.limits`)."""
    ctx = ctx if ctx is not None else event_context(model(event))
    triggers: list[Trigger] = []
    failures: list[Failure] = []
    for rule in rules:
        try:
            with templating.budget(timeout):
                triggers.append(_trigger(rule, event, ctx, catalog, timeout, max_output))
        except templating.TemplateError as exc:
            reason = f"rule {rule.id} v{rule.version}: {exc.message}"
            lookups = (ctx.get(ENRICHMENT) or {}).get("errors") or []
            if lookups:  # the likely cause: a fact the rule needs was not found
                reason += "; enrichment failed: " + "; ".join(
                    f"{p['provider']}: {p['message']}" for p in lookups
                )
            limit = isinstance(exc, templating.TemplateLimitError)
            failures.append(Failure(rule.id, rule.version, reason, limit=limit))
    return triggers, failures


def _trigger(
    rule: Rule,
    event: CloudEvent | LightEvent,
    ctx: Mapping[str, Any],
    catalog: Lookup | None,
    timeout: float,
    max_output: int,
) -> Trigger:
    limits: dict[str, Any] = {"timeout": timeout, "max_output": max_output}
    key: str | None = None
    capacity, refill = 0, 0.0
    if rule.throttle is not None:
        key = templating.render(rule.throttle.key, ctx, **limits) if rule.throttle.key else ""
        capacity, refill = rule.throttle.bucket()
    params = templating.render_value(rule.params, ctx, path="params", **limits)
    size = len(json.dumps(params, default=str))
    if size > max_output:
        raise templating.TemplateError(f"params: rendered params exceed {max_output} characters")
    problems = _catalog_problems(rule, params, catalog)
    if problems:
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise templating.TemplateError(f"rendered params rejected: {text}")
    return Trigger(
        rule_id=rule.id,
        rule_version=rule.version,
        target=rule.target.model_dump(),
        params=params,
        throttle_key=key,
        capacity=capacity,
        refill_per_second=refill,
        idempotency_key=idempotency_key(rule.id, rule.version, event.source, event.id),
        event=event,
        enrichment=ctx.get(ENRICHMENT) or None,
    )


def _catalog_problems(rule: Rule, params: Any, catalog: Lookup | None) -> list[dict[str, str]]:
    if catalog is None:
        return []
    record = catalog.get(rule.target.pool)
    if record is None or not isinstance(record.data, Mapping):
        return []
    entry = find_target(record.data, rule.target.kind, rule.target.name)
    schema = entry.get("params_schema") if entry is not None else None
    if not isinstance(schema, Mapping) or not schema:
        return []
    return params_problems(params, schema, templated=False)


def request_id(trigger: Trigger) -> str:
    """The request's event id: derived from the idempotency key, so a redelivery repeats it."""
    return str(uuid.uuid5(_REQUEST_NS, trigger.idempotency_key))


def request_data(trigger: Trigger) -> dict[str, Any]:
    """The data of the ``whale.action.requested`` event."""
    extra = {"enrichment": trigger.enrichment} if trigger.enrichment else {}
    return {
        "rule": {"id": trigger.rule_id, "version": trigger.rule_version},
        "target": trigger.target,
        "params": trigger.params,
        "idempotency_key": trigger.idempotency_key,
        **extra,
    }


def action_request(trigger: Trigger, *, source: str) -> CloudEvent:
    """The ``whale.action.requested`` event (the worker writes it with
    :func:`whale_rule_engine.outbound.request_message`, the same record without the model)."""
    return caused_by(
        model(trigger.event),
        type=ACTION_REQUESTED,
        source=source,
        id=request_id(trigger),
        subject=trigger.event.subject,
        data=request_data(trigger),
    )


def dry_run_record(
    event: CloudEvent, triggers: list[Trigger], failures: list[Failure], *, source: str
) -> CloudEvent:
    """``whale.rule.dryrun``: what a dry-run (replayed, ``replaymode: dry``) event would have
    requested; nothing is requested, no throttle token is spent, nothing is dead-lettered."""
    would = []
    for trigger in triggers:
        would.append({**request_data(trigger), "throttle_key": trigger.throttle_key})
    failed = [{"rule_id": f.rule_id, "rule_version": f.rule_version, "reason": f.reason} for f in failures]
    return caused_by(
        event,
        type=RULE_DRY_RUN,
        source=source,
        subject=event.subject,
        data={"event_id": event.id, "would_request": would, "failures": failed},
    )


def throttled_notice(trigger: Trigger, decision: Decision, *, source: str) -> CloudEvent:
    """The ``whale.rule.throttled`` event for a suppressed trigger."""
    event = model(trigger.event)
    return caused_by(
        event,
        type=RULE_THROTTLED,
        source=source,
        subject=trigger.rule_id,
        data={
            "rule_id": trigger.rule_id,
            "key": trigger.throttle_key or "",
            "suppressed": decision.suppressed,
            "next_allowed": format_time(datetime.fromtimestamp(decision.next_allowed, UTC)),
            "incident": reference(event),
        },
    )


def render_failed_notice(
    event: CloudEvent, failure: Failure, *, source: str, enrichment: Mapping[str, Any] | None = None
) -> CloudEvent:
    """The ``whale.rule.render_failed`` event: a matched rule did nothing for ``event`` (the to-do
    stage shows it to a person; the dead letter keeps the event for a redrive)."""
    return caused_by(
        event,
        type=RENDER_FAILED,
        source=source,
        subject=failure.rule_id,
        data={
            "rule_id": failure.rule_id,
            "rule_version": failure.rule_version,
            "reason": failure.reason,
            "limit": failure.limit,
            "incident": reference(event),
            **({"enrichment": dict(enrichment)} if enrichment else {}),
        },
    )
