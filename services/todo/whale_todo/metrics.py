"""Prometheus metrics of the to-do stage (declared once): its own families and the shared consumer's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from whale.metrics import CONSUMER, Families, process_registry

FAMILIES = Families("todo")

CHANGES = FAMILIES.counter(
    "whale_todo_changes_total",
    "To-do item changes the stage wrote to whale.todos, by change (created, merged, claimed, ...)",
    ["change"],
)

EXPIRED = FAMILIES.counter(
    "whale_todo_expired_total",
    "Closed to-do items past WHALE_TODO_CLOSED_RETENTION the stage tombstoned on whale.todos",
)


def registry() -> CollectorRegistry:
    """The registry ``/metrics`` of ``whale run todo`` serves (with the consumer's ``whale_consumer_*``)."""
    return process_registry(CONSUMER, FAMILIES)
