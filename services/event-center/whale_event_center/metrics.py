"""Prometheus metrics of the event center's HTTP API (declared once; the dedupe stage's and the
indexer's are in their own packages)."""

from __future__ import annotations

from whale.metrics import Families

FAMILIES = Families("event-center")
"""The HTTP front door's families (``whale run event-center``)."""

REQUESTS = FAMILIES.counter(
    "whale_event_center_events_total",
    "Events received over HTTP, by event type and outcome (accepted, invalid, unauthenticated, "
    "forbidden, too_large, saturated, unavailable)",
    ["type", "outcome"],
)
REQUEST_SECONDS = FAMILIES.histogram(
    "whale_event_center_request_seconds",
    "Time to answer POST /events, by binding mode",
    ["mode"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCHEMA_CHANGES = FAMILIES.counter(
    "whale_event_center_schema_changes_total",
    "PUT /schemas outcomes (registered, unchanged, incompatible, forced, invalid)",
    ["outcome"],
)
