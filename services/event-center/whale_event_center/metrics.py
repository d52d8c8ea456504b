"""Prometheus metrics of the event center, its dedupe stage and its indexer (declared once)."""

from __future__ import annotations

from whale.metrics import Families

HTTP = Families("event-center")
"""The HTTP front door's families (``whale run event-center``)."""
DEDUPE = Families("dedupe")
"""The dedupe stage's families (``whale run dedupe``)."""
INDEXER = Families("indexer")
"""The indexer's families (``whale run indexer``)."""

REQUESTS = HTTP.counter(
    "whale_event_center_events_total",
    "Events received over HTTP, by event type and outcome (accepted, invalid, unauthenticated, "
    "forbidden, too_large, saturated, unavailable)",
    ["type", "outcome"],
)
REQUEST_SECONDS = HTTP.histogram(
    "whale_event_center_request_seconds",
    "Time to answer POST /events, by binding mode",
    ["mode"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCHEMA_CHANGES = HTTP.counter(
    "whale_event_center_schema_changes_total",
    "PUT /schemas outcomes (registered, unchanged, incompatible, forced, invalid)",
    ["outcome"],
)
DEDUPE_EVENTS = DEDUPE.counter(
    "whale_event_center_dedupe_events_total",
    "Events the dedupe stage read from whale.ingest, by outcome (forwarded, duplicate, unreadable)",
    ["outcome"],
)
DEDUPE_TABLE_SIZE = DEDUPE.gauge(
    "whale_event_center_dedupe_table_keys", "Keys (source + id) held in the dedupe window"
)
INDEXED = INDEXER.counter(
    "whale_event_center_indexed_total",
    "Documents the indexer wrote to Elasticsearch, by topic and outcome (indexed, failed)",
    ["topic", "outcome"],
)
INDEXER_LAG_SECONDS = INDEXER.gauge(
    "whale_event_center_indexer_lag_seconds",
    "Age of the newest message of the last indexed batch (how far indexing is behind)",
)
INDEXER_BULK_SECONDS = INDEXER.histogram(
    "whale_event_center_indexer_bulk_seconds", "Time of one Elasticsearch bulk request"
)
