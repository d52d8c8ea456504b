"""Prometheus metrics of the executor (names declared once here)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from whale.inventory_http import FAMILIES as INVENTORY_FAMILIES  # records of whale.inventory skipped
from whale.metrics import CONSUMER, Families, process_registry

FAMILIES = Families("executor")

RUNS = FAMILIES.counter(
    "whale_executor_runs_total",
    "Action runs finished, by pool, action and result type",
    ["pool", "action", "result"],
)
REPLAYED = FAMILIES.counter(
    "whale_executor_replayed_total",
    "Redelivered requests answered from recorded state instead of running again",
    ["pool"],
)
WORKFLOWS = FAMILIES.counter(
    "whale_executor_workflows_total",
    "Workflow runs finished, by pool, workflow and result type",
    ["pool", "workflow", "result"],
)
RUN_SECONDS = FAMILIES.histogram(
    "whale_executor_run_seconds",
    "Time an action run took",
    ["pool", "kind"],
)
IN_FLIGHT = FAMILIES.gauge(
    "whale_executor_in_flight",
    "Requests received and not finished yet",
    ["pool"],
)
SWEPT = FAMILIES.counter(
    "whale_executor_state_swept_total",
    "Run and approval records tombstoned on whale.executor.state after the retention",
    ["pool"],
)


def registry() -> CollectorRegistry:
    """The registry this process serves on ``/metrics``: its own families only."""
    return process_registry(CONSUMER, FAMILIES, INVENTORY_FAMILIES)
