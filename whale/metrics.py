"""Prometheus metrics of the shared library (names declared once: ``whale_<part>_..._total``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CONSUMED = Counter(
    "whale_consumer_messages_total",
    "Messages a Whale consumer finished, by group and outcome (handled, dead_lettered)",
    ["group", "outcome"],
)
PRODUCED = Counter(
    "whale_producer_messages_total",
    "Messages a Whale producer wrote, by topic and outcome (acked, failed)",
    ["topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "whale_consumer_handle_seconds",
    "Time a handler took for one event or batch",
    ["group"],
)
