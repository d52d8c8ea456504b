"""Prometheus metrics of the indexer (declared once; names kept from when it lived in the event center)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from whale.metrics import CONSUMER, Families, process_registry

FAMILIES = Families("indexer")

INDEXED = FAMILIES.counter(
    "whale_event_center_indexed_total",
    "Documents the indexer wrote to Elasticsearch, by topic and outcome (indexed, failed)",
    ["topic", "outcome"],
)
LAG_SECONDS = FAMILIES.gauge(
    "whale_event_center_indexer_lag_seconds",
    "Age of the newest message of the last indexed batch (how far indexing is behind)",
)
BULK_SECONDS = FAMILIES.histogram(
    "whale_event_center_indexer_bulk_seconds", "Time of one Elasticsearch bulk request"
)


def registry() -> CollectorRegistry:
    """The registry ``/metrics`` of ``whale run indexer`` serves."""
    return process_registry(CONSUMER, FAMILIES)
