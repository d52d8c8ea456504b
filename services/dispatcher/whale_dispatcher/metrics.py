"""Prometheus metrics of the dispatcher (declared once)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from whale.metrics import CONSUMER, Families, process_registry

FAMILIES = Families("dispatcher")

DELIVERIES = FAMILIES.counter(
    "whale_dispatcher_deliveries_total",
    "Push deliveries by subscription and outcome (delivered, dead_lettered, filtered, unreadable)",
    ["subscription", "outcome"],
)
ATTEMPTS = FAMILIES.counter(
    "whale_dispatcher_attempts_total",
    "HTTP delivery attempts by subscription and outcome (ok, retryable, permanent)",
    ["subscription", "outcome"],
)
DELIVERY_SECONDS = FAMILIES.histogram(
    "whale_dispatcher_delivery_seconds",
    "Time from the first attempt to the outcome of one delivery",
    ["subscription"],
)
PAUSED = FAMILIES.gauge("whale_dispatcher_paused", "1 when a subscription is paused", ["subscription"])


def registry() -> CollectorRegistry:
    """The registry this process serves on ``/metrics``: its own families only."""
    return process_registry(CONSUMER, FAMILIES)
