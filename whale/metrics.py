"""Prometheus metrics, per process: each process exports only the families it owns.

A service declares its families in its own ``metrics.py`` on a :class:`Families` group, which
registers them nowhere; the process takes the groups it runs with :func:`process_registry` at
start and serves that registry on ``/metrics``. So ``/metrics`` of the dedupe stage shows no rule
engine families (and no zero-valued series of services that do not run there).

Label values that come from senders (event types) go through a :class:`BoundedLabel`, so a flood of
made-up values cannot grow the series: values not known, or beyond the cap, are counted as ``other``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

OTHER = "other"
C = TypeVar("C", bound=Collector)


class Families:
    """One service's metric families (``whale_<part>_...``), registered in no registry until a
    process takes them with :func:`process_registry`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._collectors: list[Collector] = []

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, documentation, labels, registry=None))

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, documentation, labels, registry=None))

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._add(Histogram(name, documentation, labels, registry=None, buckets=buckets))

    def _add(self, collector: C) -> C:
        self._collectors.append(collector)
        return collector

    def __iter__(self) -> Iterator[Collector]:
        return iter(self._collectors)


def process_registry(*groups: Families) -> CollectorRegistry:
    """A registry of the process's own families (and Python's process/platform/GC collectors)."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    for group in groups:
        for collector in group:
            registry.register(collector)
    return registry


_default_lock = threading.Lock()
_in_default: set[str] = set()


def into_default_registry(group: Families) -> None:
    """Register ``group`` in prometheus_client's default registry once: for code Whale runs inside
    someone else's process (the API middleware), whose own ``/metrics`` serves that registry."""
    with _default_lock:
        if group.name not in _in_default:
            for collector in group:
                REGISTRY.register(collector)
            _in_default.add(group.name)


class BoundedLabel:
    """A sender-given label value kept only when ``known(value)`` and fewer than ``cap`` distinct
    values were kept so far; anything else is ``other``."""

    def __init__(self, known: Callable[[str], bool], cap: int = 200) -> None:
        self._known = known
        self._cap = cap
        self._kept: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._kept:
            return value
        if len(self._kept) >= self._cap or not self._known(value):
            return OTHER
        self._kept.add(value)
        return value


CONSUMER = Families("consumer")
"""Families of :class:`whale.consumer.EventConsumer`: a process running one takes this group."""

CONSUMED = CONSUMER.counter(
    "whale_consumer_messages_total",
    "Messages a Whale consumer finished, by group and outcome (handled, dead_lettered)",
    ["group", "outcome"],
)
LAG = CONSUMER.gauge(
    "whale_consumer_lag_messages",
    "Messages of a topic not yet read by a Whale consumer group, summed over the partitions this "
    "process owns (librdkafka's consumer_lag, refreshed every statistics interval)",
    ["group", "topic"],
)
LAG_INTERVAL_MS = 15_000  # librdkafka's statistics.interval.ms for the consume loop


def lag_reporter(group: str) -> Callable[[str], None]:
    """librdkafka's ``stats_cb`` for a consumer of ``group``: sets :data:`LAG` per topic from the
    statistics JSON (partitions whose lag is unknown, -1, are left out)."""

    def report(stats: str) -> None:
        try:
            topics = json.loads(stats).get("topics", {})
            for topic, found in topics.items():
                lags = [p.get("consumer_lag", -1) for p in found.get("partitions", {}).values()]
                LAG.labels(group=group, topic=topic).set(sum(lag for lag in lags if lag >= 0))
        except (ValueError, AttributeError, TypeError):
            return  # statistics are advisory: a payload in another shape sets nothing

    return report
