"""Prometheus metrics of the rule engine, declared once (``whale_rule_engine_..._total``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "whale_rule_engine_events_total",
    "Events read from whale.events, by outcome (matched, unmatched, dead_lettered)",
    ["outcome"],
)
MATCHES = Counter("whale_rule_engine_matches_total", "Rule matches before throttling", ["rule"])
REQUESTED = Counter(
    "whale_rule_engine_actions_requested_total", "whale.action.requested events emitted", ["rule"]
)
THROTTLED = Counter("whale_rule_engine_throttled_total", "Triggers suppressed by a rule's throttle", ["rule"])
DEAD_LETTERED = Counter(
    "whale_rule_engine_dead_lettered_total", "Messages sent to whale.dlq, by reason kind", ["reason"]
)
RULES = Gauge("whale_rule_engine_rules", "Enabled rules in the index")
MATCH_SECONDS = Histogram("whale_rule_engine_match_seconds", "Time to match one event against the index")
