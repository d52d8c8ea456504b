"""Prometheus metrics of the adapters service and the API middleware (declared once)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from whale.metrics import Families, process_registry

FAMILIES = Families("adapters")
"""``whale run adapters``: webhooks and pollers."""
MIDDLEWARE = Families("middleware")
"""The API middleware, inside the user's own application (it registers them where it serves metrics)."""

EVENTS = FAMILIES.counter(
    "whale_adapters_events_total",
    "Events an adapter produced into whale.ingest, by adapter and outcome (published, invalid, failed)",
    ["adapter", "outcome"],
)
REQUESTS = FAMILIES.counter(
    "whale_adapters_requests_total",
    "Webhook requests received, by adapter and outcome (accepted, refused, invalid, unavailable)",
    ["adapter", "outcome"],
)
POLLS = FAMILIES.counter(
    "whale_adapters_polls_total",
    "Poller runs, by poller and outcome (ok, failed)",
    ["poller", "outcome"],
)
MIDDLEWARE_EVENTS = FAMILIES.counter(
    "whale_adapters_middleware_events_total",
    "API middleware events, by source and outcome (queued, dropped, published, invalid, failed)",
    ["source", "outcome"],
)
MIDDLEWARE_QUEUE = MIDDLEWARE.gauge(
    "whale_adapters_middleware_queue_depth",
    "Events waiting in the API middleware's background queue",
    ["source"],
)


def registry() -> CollectorRegistry:
    """The registry this process serves on ``/metrics``: its own families only."""
    return process_registry(FAMILIES)
