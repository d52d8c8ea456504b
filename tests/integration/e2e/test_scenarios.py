"""The shipped scenarios end to end, every service its own process on the real Kafka and Elasticsearch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from whale.cloudevent import CloudEvent
from whale.testing import Tap

from .harness import ALERTNAME, KERNEL_ERROR, Platform, disk_alert, fill_log_dir

pytestmark = pytest.mark.integration

FINAL = ("whale.workflow.completed", "whale.workflow.failed")


def host_of(e: CloudEvent) -> str | None:
    """The host a workflow event is about: its output (completed) or its input (started)."""
    output = e.data.get("output") if isinstance(e.data, dict) else None
    if not isinstance(output, dict):
        return None
    return output.get("host") or (output.get("input") or {}).get("host")


def of_workflow(
    tap: Tap, name: str, host: str, types: tuple[str, ...] = FINAL
) -> Callable[[CloudEvent], bool]:
    """Events of workflow ``name`` about ``host`` (runs are recognised by their started event)."""

    def check(e: CloudEvent) -> bool:
        if (
            e.type not in types
            or not isinstance(e.data, dict)
            or (e.data.get("target") or {}).get("name") != name
        ):
            return False
        if host_of(e) == host:
            return True
        runs = {s.subject for s in tap.events if s.type == "whale.workflow.started" and host_of(s) == host}
        return e.subject in runs

    return check


def poll(fn: Callable[[], Any], timeout: float = 120.0, every: float = 1.0) -> Any:
    """``fn()`` once it returns something truthy (its last value at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def whale_cli(*args: str) -> str:
    """Run the ``whale`` command line; its standard output (it must exit 0)."""
    done = subprocess.run([sys.executable, "-m", "whale", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def search(platform: Platform, **params: Any) -> list[dict[str, Any]]:
    answer = httpx.get(f"{platform.event_center}/events", params=params, timeout=30)
    return list(answer.json().get("events", [])) if answer.status_code == 200 else []


def test_a_disk_alert_through_the_adapter_cleans_old_logs_notifies_and_is_traced(
    platform: Platform, results: Tap, tmp_path: Path
) -> None:
    host = platform.host("vm-e2e")
    log_dir = platform.log_dir(host)  # the host's inventory fact: the alert does not say it
    fill_log_dir(log_dir, old=50, new=10)
    answer = platform.post_alerts([disk_alert(host)])
    assert answer.status_code == 202, answer.text

    found = results.wait(of_workflow(results, "disk.remediate", host), timeout=180)
    assert len(found) == 1, platform.tail("executor") + platform.tail("rule-engine")
    done = found[0]
    assert done.type == "whale.workflow.completed", done.data
    assert sorted(p.name for p in log_dir.iterdir()) == sorted(f"new-{i}.log" for i in range(10))
    output = done.data["output"]
    assert output["removed"] == 50
    assert output["before_percent"] > 50 > output["after_percent"]

    [text] = [t for t in platform.robot.texts() if host in t]
    assert f"before: **{output['before_percent']}%**" in text
    assert f"after: **{output['after_percent']}%**" in text

    correlation = str(done.extensions["correlationid"])
    found = poll(lambda: search(platform, correlationid=correlation, type="whale.workflow.completed"))
    assert [f["event"]["id"] for f in found] == [done.id]

    def chain() -> list[dict[str, Any]]:
        answer = httpx.get(f"{platform.event_center}/traces/{correlation}", timeout=30)
        events = answer.json().get("events", []) if answer.status_code == 200 else []
        return events if any(s["event"]["id"] == done.id for s in events) else []

    steps = poll(chain)
    types = [s["event"]["type"] for s in steps]
    assert types[0] == "prometheus.alert.firing"
    assert (
        types.index("whale.action.requested") < types.index("whale.workflow.started") < types.index(done.type)
    )
    seen: set[str] = set()
    for step in steps:  # causal order: every cause comes before its effects
        cause = step["event"].get("causationid")
        assert cause is None or cause in seen, f"{step['event']['type']} before its cause"
        seen.add(step["event"]["id"])
    printed = whale_cli("events", "trace", correlation, "--url", platform.event_center)
    assert printed.index("prometheus.alert.firing") < printed.index("whale.workflow.completed")


def test_a_disk_still_full_after_cleanup_opens_a_todo_for_a_person(
    platform: Platform, results: Tap, tmp_path: Path
) -> None:
    host = platform.host("vm-e2e")
    fill_log_dir(platform.log_dir(host), old=5, new=95)
    assert platform.post_alerts([disk_alert(host)]).status_code == 202

    created = results.wait(
        lambda e: (
            e.type == "whale.todo.created"
            and e.source == platform.todo_source
            and e.data["todo"]["key"] == f"disk-full|{host}"
        ),
        timeout=180,
    )
    assert len(created) == 1, platform.tail("todo")
    todo = created[0].data["todo"]
    assert todo["origin"] == "requested"
    assert todo["details"]["after_percent"] > 85
    [text] = [t for t in platform.robot.texts() if host in t]
    assert "a to-do was opened" in text
    listed = poll(
        lambda: [
            t
            for t in httpx.get(f"{platform.event_center}/todos", params={"limit": 1000}).json()["todos"]
            if t["id"] == todo["id"]
        ]
    )
    assert listed[0]["status"] == "open"


def test_unhandled_events_become_todos_duplicates_merge_and_people_claim_and_resolve_them(
    platform: Platform, results: Tap
) -> None:
    kind, subject = f"e2e.printer.jammed.{uuid.uuid4().hex[:8]}", "floor-3"
    platform.register_type(kind)

    def send() -> str:
        event_id = str(uuid.uuid4())
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": "e2e/printers",
            "type": kind,
            "subject": subject,
        }
        answer = platform.post_event({**event, "data": {"tray": 2}})
        assert answer.status_code == 202, answer.text
        return event_id

    first = send()

    def ours(e: CloudEvent) -> bool:
        return (
            e.source == platform.todo_source
            and e.type == "whale.todo.created"
            and e.data["todo"]["type"] == kind
        )

    [created] = results.wait(ours)
    todo_id = created.data["todo"]["id"]
    assert created.extensions["causationid"] == first
    send()
    [merged] = results.wait(lambda e: e.type == "whale.todo.updated" and e.subject == todo_id)
    assert merged.data["change"] == "merged"
    assert merged.data["todo"]["count"] == 2

    api = platform.event_center
    listed = poll(
        lambda: [
            t
            for t in httpx.get(f"{api}/todos", params={"type": kind}).json()["todos"]
            if t["id"] == todo_id and t["count"] == 2
        ]
    )
    assert [(t["id"], t["count"]) for t in listed] == [(todo_id, 2)]
    claimed = httpx.post(f"{api}/todos/{todo_id}/claim", json={"by": "alice"}, timeout=30)
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["status"], claimed.json()["claimed_by"]) == ("claimed", "alice")
    resolved = httpx.post(
        f"{api}/todos/{todo_id}/resolve", json={"by": "alice", "comment": "cleared"}, timeout=30
    )
    assert resolved.json()["status"] == "resolved"
    changes = results.wait(lambda e: e.subject == todo_id and e.type.startswith("whale.todo."), count=4)
    assert [e.type for e in changes] == [
        "whale.todo.created",
        "whale.todo.updated",
        "whale.todo.updated",
        "whale.todo.resolved",
    ]
    send()  # the item is resolved: a new signal opens a new item
    reopened = results.wait(
        lambda e: e.type == "whale.todo.created" and e.data["todo"]["type"] == kind, count=2
    )
    assert len({e.data["todo"]["id"] for e in reopened}) == 2


def test_a_storm_of_identical_alerts_starts_one_workflow_and_reports_the_rest_as_throttled(
    platform: Platform, results: Tap, tmp_path: Path
) -> None:
    host = platform.host("vm-e2e")
    fill_log_dir(platform.log_dir(host), old=1, new=1)
    storm = [disk_alert(host) for _ in range(40)]
    for i in range(0, len(storm), 10):
        assert platform.post_alerts(storm[i : i + 10]).status_code == 202
    assert results.wait(of_workflow(results, "disk.remediate", host), timeout=180)
    throttled = results.wait(
        lambda e: e.type == "whale.rule.throttled" and e.data.get("key") == f"{host}:9100",
        count=39,
        timeout=120,
    )
    assert throttled, "no throttle notice"
    results.poll(5)  # late extras would show up here
    finished = results.wait(of_workflow(results, "disk.remediate", host), timeout=0)
    assert len(finished) == 1
    started = results.wait(
        of_workflow(results, "disk.remediate", host, ("whale.workflow.started",)), timeout=5
    )
    assert len({e.subject for e in started}) == 1


def test_a_kernel_error_event_records_the_lines_clears_them_and_notifies(
    platform: Platform, results: Tap, tmp_path: Path
) -> None:
    host = platform.host("db-e2e")
    kmsg = tmp_path / "kmsg.log"
    kmsg.write_text("ok line\nEXT4-fs error (device sda1): bad block\nata1: I/O error, dev sda\nfine\n")
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"e2e/hosts/{host}",
        "type": KERNEL_ERROR,
        "subject": host,
        "data": {"host": host, "log_file": str(kmsg)},
    }
    kmsg.with_name("event.json").write_text(json.dumps(event))
    assert "accepted" in whale_cli(
        "events", "send", str(kmsg.with_name("event.json")), "--url", platform.event_center
    )
    found = results.wait(of_workflow(results, "dmesg.cleanup", host), timeout=180)
    assert len(found) == 1, platform.tail("executor") + platform.tail("rule-engine")
    done = found[0]
    assert done.type == "whale.workflow.completed", done.data
    assert done.data["output"]["lines"] == [
        "EXT4-fs error (device sda1): bad block",
        "ata1: I/O error, dev sda",
    ]
    assert kmsg.read_text() == ""
    [text] = [t for t in platform.robot.texts() if host in t]
    assert "2 line(s) recorded and cleared" in text


def test_a_disk_alert_for_a_host_the_inventory_does_not_know_reaches_a_person_as_a_todo(
    platform: Platform, results: Tap, tmp_path: Path
) -> None:
    host = f"vm-unknown-{uuid.uuid4().hex[:8]}"  # matches the rule, is in no inventory
    assert platform.post_alerts([disk_alert(host)]).status_code == 202
    instance = f"{host}:9100"

    def about(e: CloudEvent) -> bool:
        return isinstance(e.data, dict) and instance in str((e.data.get("incident") or {}).get("title"))

    [failed] = results.wait(lambda e: e.type == "whale.rule.render_failed" and about(e), timeout=180)
    assert failed.data["rule_id"] == "disk-capacity-e2e"
    assert "enrichment" in failed.data["reason"], failed.data
    assert failed.data["enrichment"]["errors"][0]["provider"] == "inventory"
    [created] = results.wait(
        lambda e: (
            e.type == "whale.todo.created"
            and e.source == platform.todo_source
            and instance in e.data["todo"]["title"]
        ),
        timeout=120,
    )
    todo = created.data["todo"]
    assert todo["origin"] == "render_failed", platform.tail("todo")
    assert todo["title"].startswith(f"{ALERTNAME} on {instance}")
    assert "could not be rendered" in todo["history"][0]["text"]
    assert not results.wait(of_workflow(results, "disk.remediate", host), timeout=0)  # nothing ran
