"""A community disk alert through a real Prometheus and Alertmanager into the adapters: it fires, its
value changes (an update of the same episode), it resolves (same correlation), it fires again (a new
episode); re-sent notifications keep their ids."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from whale_adapters.alertmanager import FIRING, RESOLVED
from whale_adapters.settings import Settings

from tests.integration.alerts.monitoring import Monitoring, NodeMetrics
from whale.cloudevent import CloudEvent
from whale.testing import Tap

pytestmark = pytest.mark.integration
WAIT = 120.0


def _value(event: CloudEvent) -> float:
    match = re.search(r"VALUE = ([0-9.]+)", event.data["annotations"]["description"])
    assert match, event.data["annotations"]
    return float(match.group(1))


def _ours(adapters: Settings, node: NodeMetrics) -> Callable[[CloudEvent], bool]:
    def ours(e: CloudEvent) -> bool:
        return (
            e.source == adapters.alertmanager_source
            and isinstance(e.data, dict)
            and e.data.get("labels", {}).get("instance") == node.instance
        )

    return ours


async def _first(tap: Tap, predicate: Callable[[CloudEvent], bool], what: str, mon: Monitoring) -> CloudEvent:
    found = await tap.await_(predicate, 1, timeout=WAIT)
    assert found, f"no {what} within {WAIT}s\n{mon.logs()}"
    return found[0]


async def test_a_disk_alert_fires_updates_resolves_and_fires_again_as_one_trace_per_episode(
    adapters: Settings, node: NodeMetrics, monitoring: Monitoring, ingest: Tap
) -> None:
    ours = _ours(adapters, node)

    def state(s: str) -> Callable[[CloudEvent], bool]:
        return lambda e: ours(e) and e.extensions.get("alertstate") == s

    node.free_percent = 8.0
    fired = await _first(ingest, state("firing"), "firing event", monitoring)
    assert fired.type == FIRING
    assert fired.data["labels"]["alertname"] == "HostOutOfDiskSpace"
    assert fired.data["annotations"]["summary"] == f"Host out of disk space (instance {node.instance})"
    assert _value(fired) == 8.0
    episode = fired.extensions["correlationid"]

    node.free_percent = 3.0  # the disk fills up: the same alert, a new value
    updated = await _first(ingest, lambda e: state("updated")(e) and _value(e) == 3.0, "update", monitoring)
    assert updated.type == FIRING  # rules on prometheus.alert.firing see the new value
    assert updated.subject == fired.subject
    assert updated.extensions["correlationid"] == episode

    node.free_percent = 50.0
    resolved = await _first(ingest, state("resolved"), "resolution", monitoring)
    assert resolved.type == RESOLVED
    assert resolved.subject == fired.subject
    assert resolved.extensions["correlationid"] == episode

    node.free_percent = 5.0
    again = await _first(
        ingest,
        lambda e: state("firing")(e) and e.extensions["correlationid"] != episode,
        "re-firing",
        monitoring,
    )
    assert again.subject == fired.subject  # the same alert (fingerprint) ...
    assert again.data["startsAt"] != fired.data["startsAt"]  # ... in a new episode
    assert _value(again) == 5.0

    # Alertmanager re-sent every notification (repeat interval 2s): the re-sends kept their ids, so
    # the dedupe stage keeps one event per state change.
    first_episode = [e for e, _ in ingest.seen if ours(e) and e.extensions["correlationid"] == episode]
    by_id: dict[str, set[tuple[str, float]]] = {}
    for e in first_episode:
        by_id.setdefault(e.id, set()).add((str(e.extensions["alertstate"]), _value(e)))
    assert all(len(v) == 1 for v in by_id.values()), by_id
    states = sorted(next(iter(v)) for v in by_id.values())
    assert states[0] == ("firing", 8.0)
    assert ("updated", 3.0) in states and ("resolved", 3.0) in states
