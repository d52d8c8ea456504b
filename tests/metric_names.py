"""The Whale metric family names a ``/metrics`` page or a group of families holds (for the tests
that each process exports only its own families)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from prometheus_client.metrics import MetricWrapperBase


def _base(name: str) -> str:
    return name.removesuffix("_created").removesuffix("_total")


def exported(text: str) -> set[str]:
    """Names of the ``whale_*`` families on a Prometheus text page."""
    return {_base(line.split()[2]) for line in text.splitlines() if line.startswith("# TYPE whale_")}


def declared(*groups: Iterable[Any]) -> set[str]:
    """Names of the families of ``groups`` (:class:`whale.metrics.Families`)."""
    return {
        _base(metric.name)
        for group in groups
        for collector in group
        for metric in cast(MetricWrapperBase, collector).describe()
    }
