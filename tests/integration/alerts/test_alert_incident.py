"""One incident, one to-do, through a real Prometheus and Alertmanager and the whole platform.

node-exporter's community disk alert (renamed only, so that no other session's rules react; instance
relabelled to the inventory host name with a port, as real setups do) fires: the shipped disk rule
remediates once (host facts from the inventory). Its value rises: the update matches again, the
throttle holds it back, and that recurrence opens the incident's to-do. It resolves: the to-do is
closed by the alert's source. It fires again (a new episode): held back again, the same to-do reopens.
The first episode's trace holds the firing, the update, the remediation, the throttle, the to-do and
the resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.alerts.monitoring import Monitoring, NodeMetrics
from tests.integration.e2e.harness import ALERTNAME, Platform, fill_log_dir
from whale import topics
from whale.cloudevent import CloudEvent
from whale.testing import Tap

pytestmark = pytest.mark.integration
WAIT = 180.0
FINAL = ("whale.workflow.completed", "whale.workflow.failed")


def _one(
    tap: Tap, predicate: Callable[[CloudEvent], bool], what: str, extra: Callable[[], str]
) -> CloudEvent:
    found = tap.wait(predicate, 1, timeout=WAIT)
    assert found, f"no {what} within {WAIT}s\n{extra()}"
    return found[0]


def test_an_alerts_whole_life_is_one_todo_opened_by_the_throttle_closed_at_the_source_and_reopened(
    binaries: tuple[Path, Path], platform: Platform, results: Tap, node: NodeMetrics, tmp_path: Path
) -> None:
    host = platform.host("vm-e2e")
    instance = f"{host}:9100"
    fill_log_dir(platform.log_dir(host), old=50, new=10)  # the host's inventory fact log_dir
    events = Tap(platform.settings, topics.EVENTS)
    mon = Monitoring(
        binaries,
        tmp_path,
        target=node.instance,
        webhook=f"{platform.adapters}/alertmanager",
        token="dev-mode-needs-none",
        instance=instance,
        alertname=ALERTNAME,
    )

    def logs() -> str:
        return mon.logs() + platform.tail("rule-engine") + platform.tail("todo") + platform.tail("executor")

    def alert(state: str) -> Callable[[CloudEvent], bool]:
        return lambda e: (
            e.extensions.get("alertstate") == state
            and isinstance(e.data, dict)
            and e.data.get("labels", {}).get("instance") == instance
        )

    def ours(kind: str, todo_id: str | None = None) -> Callable[[CloudEvent], bool]:
        return lambda e: (
            e.type == kind
            and e.source == platform.todo_source
            and e.data["todo"]["title"].startswith(f"{ALERTNAME} on {instance}")
            and (todo_id is None or e.data["todo"]["id"] == todo_id)
        )

    try:
        mon.start()
        node.free_percent = 8.0
        fired = _one(events, alert("firing"), "firing", logs)
        episode = str(fired.extensions["correlationid"])
        done = _one(
            results,
            lambda e: e.type in FINAL and e.extensions.get("correlationid") == episode,
            "remediation",
            logs,
        )
        assert done.type == "whale.workflow.completed", done.data
        assert done.data["output"]["host"] == host and done.data["output"]["removed"] == 50

        node.free_percent = 3.0  # the disk fills up: an update, matched again, held back by the throttle
        updated = _one(events, alert("updated"), "update", logs)
        assert updated.extensions["correlationid"] == episode
        assert updated.data["changed"] == ["annotations.description"]
        throttled = _one(
            results,
            lambda e: e.type == "whale.rule.throttled" and e.extensions.get("correlationid") == episode,
            "throttle notice",
            logs,
        )
        created = _one(results, ours("whale.todo.created"), "to-do", logs)
        todo: dict[str, Any] = created.data["todo"]
        assert todo["origin"] == "throttled" and todo["status"] == "open"
        assert todo["title"] == f"{ALERTNAME} on {instance}: Host out of disk space (instance {instance})"
        assert created.extensions["causationid"] == throttled.id
        assert "held back a recurrence" in todo["history"][-1]["text"]

        node.free_percent = 50.0
        resolved = _one(events, alert("resolved"), "resolution", logs)
        assert resolved.extensions["correlationid"] == episode
        closed = _one(results, ours("whale.todo.resolved", todo["id"]), "to-do closed", logs)
        assert closed.data["change"] == "resolved_by_source"
        assert closed.data["todo"]["resolved_by"] == resolved.source

        node.free_percent = 5.0  # fires again: a new episode, held back again, the same to-do reopens
        again = _one(
            events,
            lambda e: alert("firing")(e) and e.extensions["correlationid"] != episode,
            "re-firing",
            logs,
        )
        reopened = _one(
            results,
            lambda e: ours("whale.todo.updated", todo["id"])(e) and e.data["change"] == "reopened",
            "to-do reopened",
            logs,
        )
        assert reopened.data["todo"]["status"] == "open" and reopened.data["todo"]["reopened"] == 1
        assert reopened.extensions["correlationid"] == again.extensions["correlationid"]
        kinds = [h["kind"] for h in reopened.data["todo"]["history"]]
        assert kinds[0] == "throttled" and "resolved" in kinds and kinds[-1] == "throttled"

        results.poll(3)
        runs = {
            e.subject
            for e in results.events
            if e.type == "whale.workflow.started"
            and e.extensions.get("correlationid") in (episode, again.extensions["correlationid"])
        }
        assert len(runs) == 1, "one remediation for the whole life of the alert"
        todos = {
            e.data["todo"]["id"]
            for e in results.events
            if ours(e.type)(e) and e.type.startswith("whale.todo.")
        }
        assert todos == {todo["id"]}

        wanted = {
            "prometheus.alert.firing",
            "whale.action.requested",
            "whale.workflow.started",
            "whale.workflow.completed",
            "whale.rule.throttled",
            "whale.todo.created",
            "prometheus.alert.resolved",
            "whale.todo.resolved",
        }
        deadline = time.monotonic() + WAIT
        types: list[str] = []
        while time.monotonic() < deadline:
            answer = httpx.get(f"{platform.event_center}/traces/{episode}", timeout=30)
            types = [s["event"]["type"] for s in answer.json().get("events", [])] if answer.is_success else []
            if wanted <= set(types):
                break
            time.sleep(2)
        assert wanted <= set(types), types
        assert types.count("prometheus.alert.firing") == 2  # the firing and its update
        assert types.index("prometheus.alert.firing") < types.index("whale.workflow.completed")
        assert types.index("whale.rule.throttled") < types.index("whale.todo.created")
        assert types.index("prometheus.alert.resolved") < types.index("whale.todo.resolved")
    finally:
        mon.stop()
        events.close()
