"""``whale rules test``: run a draft rule over stored events, triggering nothing.

Events are read from the event center's Elasticsearch indices (``whale-events-*``; documents of
``kind: event`` from ``whale.events``, the whole event in ``raw``), oldest first, and replayed
through the same matching, rendering and token bucket as the worker, with event times as the clock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from whale import topics
from whale.cloudevent import CloudEvent
from whale.enrichment import NO_ENRICHMENT, Enricher
from whale.errors import EventError
from whale.rules.model import Rule, parse_duration
from whale.rules.ruleset import RuleSet
from whale.settings import WhaleSettings
from whale_rule_engine.engine import action_request, plan
from whale_rule_engine.errors import BacktestError
from whale_rule_engine.throttle import BucketState, decide

PAGE = 500


@dataclass
class Report:
    """What a rule would have done over a window of stored events."""

    scanned: int = 0
    matched: int = 0
    triggered: list[dict[str, Any]] = field(default_factory=list)
    suppressed: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)
    unreadable: int = 0

    def as_dict(self, limit: int = 20) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "matched": self.matched,
            "would_trigger": len(self.triggered),
            "would_suppress": sum(self.suppressed.values()),
            "suppressed_by_key": dict(self.suppressed),
            "render_failures": len(self.failures),
            "unreadable": self.unreadable,
            "triggers": self.triggered[:limit],
            "failures": self.failures[:limit],
        }


def simulate(
    rule: Rule,
    events: Iterator[CloudEvent],
    *,
    source: str = "whale/rules-test",
    enricher: Enricher = NO_ENRICHMENT,
) -> Report:
    """Replay ``events`` (oldest first) through ``rule``: enrich (today's facts), match, render,
    throttle by event time."""
    report = Report()
    buckets: dict[str, BucketState] = {}
    rules = RuleSet()  # the worker's matching: the index, enabled rules only
    rules.set_directory_rules({rule.id: rule})
    for event in events:
        report.scanned += 1
        ctx = enricher.context(event)
        if not rules.match(ctx):
            continue
        report.matched += 1
        triggers, failures = plan([rule], event, ctx=ctx)
        for failure in failures:
            report.failures.append({"event_id": event.id, "reason": failure.reason})
        for trigger in triggers:
            if trigger.throttle_key is not None:
                now = event.time.timestamp() if event.time else datetime.now(UTC).timestamp()
                decision = decide(
                    buckets.get(trigger.bucket),
                    capacity=trigger.capacity,
                    refill_per_second=trigger.refill_per_second,
                    now=now,
                    idempotency_key=trigger.idempotency_key,
                )
                buckets[trigger.bucket] = decision.state
                if not decision.allowed:
                    report.suppressed[trigger.throttle_key] += 1
                    continue
            request = action_request(trigger, source=source)
            report.triggered.append(
                {
                    "event_id": event.id,
                    "time": event.time_text(),
                    "target": trigger.target,
                    "params": trigger.params,
                    "idempotency_key": request.data["idempotency_key"],
                }
            )
    return report


def parse_since(text: str) -> timedelta:
    """``24h``, ``90m``, ``7d``, ``30s`` -> a window length."""
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise BacktestError(str(exc), field="since") from None


def stored_events(
    settings: WhaleSettings,
    since: timedelta,
    *,
    index: str = "whale-events-*",
    types: list[str] | None = None,
    counter: Report | None = None,
) -> Iterator[CloudEvent]:
    """Events of ``whale.events`` stored in Elasticsearch within ``since``, oldest first."""
    start = datetime.now(UTC) - since
    filters: list[dict[str, Any]] = [
        {"term": {"kind": "event"}},
        {"term": {"topic": topics.EVENTS}},
        {"range": {"time": {"gte": start.isoformat()}}},
    ]
    if types:
        filters.append({"terms": {"type": types}})
    auth = (settings.es_username, settings.es_password or "") if settings.es_username else None
    body: dict[str, Any] = {
        "size": PAGE,
        "query": {"bool": {"filter": filters}},
        "sort": [{"time": "asc"}, {"doc_id": "asc"}],
        "_source": ["raw"],
    }
    with httpx.Client(base_url=settings.es_url.rstrip("/"), auth=auth, timeout=30.0) as client:
        while True:
            try:
                response = client.post(f"/{index}/_search", params={"ignore_unavailable": "true"}, json=body)
            except httpx.HTTPError as exc:
                raise BacktestError(f"Elasticsearch at {settings.es_url} did not answer: {exc}") from None
            if response.status_code == 404:
                return
            if response.status_code >= 400:
                raise BacktestError(
                    f"Elasticsearch refused the search: {response.status_code} {response.text[:300]}"
                )
            hits = response.json().get("hits", {}).get("hits", [])
            for hit in hits:
                event = _event(hit)
                if event is None:
                    if counter is not None:
                        counter.unreadable += 1
                    continue
                yield event
            if len(hits) < PAGE:
                return
            body["search_after"] = hits[-1]["sort"]


def _event(hit: dict[str, Any]) -> CloudEvent | None:
    raw = hit.get("_source", {}).get("raw")
    if not isinstance(raw, str):
        return None
    try:
        return CloudEvent.from_structured(json.loads(raw))
    except (ValueError, EventError):
        return None
