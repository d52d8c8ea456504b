"""Prometheus metrics of the rule engine, declared once (``whale_rule_engine_..._total``)."""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter

from whale.metrics import Families, process_registry

FAMILIES = Families("rule-engine")

EVENTS = FAMILIES.counter(
    "whale_rule_engine_events_total",
    "Events read from whale.events, by outcome (matched, unmatched, dead_lettered)",
    ["outcome"],
)
MATCHES = FAMILIES.counter("whale_rule_engine_matches_total", "Rule matches before throttling", ["rule"])
REQUESTED = FAMILIES.counter(
    "whale_rule_engine_actions_requested_total", "whale.action.requested events emitted", ["rule"]
)
THROTTLED = FAMILIES.counter(
    "whale_rule_engine_throttled_total", "Triggers suppressed by a rule's throttle", ["rule"]
)
DEAD_LETTERED = FAMILIES.counter(
    "whale_rule_engine_dead_lettered_total", "Messages sent to whale.dlq, by reason kind", ["reason"]
)
BUCKETS_EXPIRED = FAMILIES.counter(
    "whale_rule_engine_buckets_expired_total",
    "Throttle buckets deleted (tombstoned) because they had refilled and idled past the grace",
)
ENRICH_FAILED = FAMILIES.counter(
    "whale_rule_engine_enrichment_failed_total",
    "Enrichment lookups that failed (the event goes on, the failure is in its enrichment.errors)",
    ["provider"],
)
RULES = FAMILIES.gauge("whale_rule_engine_rules", "Enabled rules in the index")
MATCH_SECONDS = FAMILIES.histogram(
    "whale_rule_engine_match_seconds", "Time to match one event against the index"
)


@lru_cache(maxsize=16_384)
def child(family: Counter, value: str) -> Counter:
    """``family.labels(value)``, looked up once per label value (its lock and label checks cost
    more than the increment, per event). Children are never removed from these families."""
    return family.labels(value)


def registry() -> CollectorRegistry:
    """The registry this process serves on ``/metrics``: its own families only."""
    return process_registry(FAMILIES)
