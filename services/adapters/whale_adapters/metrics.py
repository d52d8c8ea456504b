"""Prometheus metrics of the adapters service and the API middleware (declared once)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "whale_adapters_events_total",
    "Events an adapter produced into whale.ingest, by adapter and outcome (published, invalid, failed)",
    ["adapter", "outcome"],
)
REQUESTS = Counter(
    "whale_adapters_requests_total",
    "Webhook requests received, by adapter and outcome (accepted, refused, invalid, unavailable)",
    ["adapter", "outcome"],
)
POLLS = Counter(
    "whale_adapters_polls_total",
    "Poller runs, by poller and outcome (ok, failed)",
    ["poller", "outcome"],
)
MIDDLEWARE_EVENTS = Counter(
    "whale_adapters_middleware_events_total",
    "API middleware events, by source and outcome (queued, dropped, published, invalid, failed)",
    ["source", "outcome"],
)
MIDDLEWARE_QUEUE = Gauge(
    "whale_adapters_middleware_queue_depth",
    "Events waiting in the API middleware's background queue",
    ["source"],
)
