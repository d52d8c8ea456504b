"""Prometheus metrics of the dispatcher (declared once)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "whale_dispatcher_deliveries_total",
    "Push deliveries by subscription and outcome (delivered, dead_lettered, filtered, unreadable)",
    ["subscription", "outcome"],
)
ATTEMPTS = Counter(
    "whale_dispatcher_attempts_total",
    "HTTP delivery attempts by subscription and outcome (ok, retryable, permanent)",
    ["subscription", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "whale_dispatcher_delivery_seconds",
    "Time from the first attempt to the outcome of one delivery",
    ["subscription"],
)
PAUSED = Gauge("whale_dispatcher_paused", "1 when a subscription is paused", ["subscription"])
