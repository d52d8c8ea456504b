"""Prometheus metrics of the dedupe stage (declared once; names kept from when it lived in the event center)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from whale.metrics import CONSUMER, Families, process_registry

FAMILIES = Families("dedupe")

EVENTS = FAMILIES.counter(
    "whale_event_center_dedupe_events_total",
    "Events the dedupe stage read from whale.ingest, by outcome (forwarded, duplicate, unreadable)",
    ["outcome"],
)
TABLE_SIZE = FAMILIES.gauge(
    "whale_event_center_dedupe_table_keys", "Keys (source + id) held in the dedupe window"
)


def registry() -> CollectorRegistry:
    """The registry ``/metrics`` of ``whale run dedupe`` serves."""
    return process_registry(CONSUMER, FAMILIES)
