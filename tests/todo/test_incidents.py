"""One incident, one to-do: alerts merge by identity, resolve at the source, reopen on re-firing;
render failures, throttled recurrences and failed runs surface on the incident's to-do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from whale_todo.stage import TodoBook, TodoStage

from tests.todo.test_stage import Received, announced, stage
from whale import topics
from whale.cloudevent import CloudEvent
from whale.correlation import caused_by
from whale.incidents import reference
from whale.todos import CREATED, RESOLVED, UPDATED

SOURCE = "/adapters/alertmanager"
RULE = """
id: disk-alert
match:
  all:
    - {field: type, equals: prometheus.alert.firing}
    - {field: data.labels.alertname, equals: HostDiskUsageHigh}
target: {kind: workflow, name: disk.remediate}
"""


def am(state: str, episode: str, *, value: str = "8", alertname: str = "HostOutOfDiskSpace") -> CloudEvent:
    resolved = state == "resolved"
    return CloudEvent.create(
        type="prometheus.alert.resolved" if resolved else "prometheus.alert.firing",
        source=SOURCE,
        subject="fp1",
        data={
            "status": "resolved" if resolved else "firing",
            "labels": {"alertname": alertname, "instance": "vm-web-01:9100"},
            "annotations": {"summary": "Host out of disk space (instance vm-web-01:9100)", "value": value},
        },
        extensions={"alertstate": state, "correlationid": episode},
    )


def handling_stage(tmp_path: Path) -> tuple[TodoStage, TodoBook]:
    """A stage whose rules handle HostDiskUsageHigh alerts (a rule remediates them)."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "alert.yaml").write_text(RULE)
    st, book, _ = stage(tmp_path)
    st._rules.load_directory(tmp_path / "rules")
    return st, book


def notice(cause: CloudEvent, type: str, **data: Any) -> CloudEvent:
    return caused_by(cause, type=type, source="whale/rule-engine", data=data)


def results(event: CloudEvent) -> Received:
    return Received(event, topic=topics.RESULTS)


async def test_an_unhandled_alert_is_one_todo_named_by_alert_host_and_summary_through_its_life(
    tmp_path: Path,
) -> None:
    st, book, producer = stage(tmp_path)
    await st.handle(Received(am("firing", "ep1")))
    await st.handle(Received(am("updated", "ep1", value="3")))
    [item] = book.items.values()
    assert (
        item["title"]
        == "HostOutOfDiskSpace on vm-web-01:9100: Host out of disk space (instance vm-web-01:9100)"
    )
    assert item["count"] == 2 and item["details"]["annotations"]["value"] == "3"
    await st.handle(Received(am("resolved", "ep1")))
    [item] = book.items.values()
    assert item["status"] == "resolved" and item["resolved_by"] == SOURCE
    await st.handle(Received(am("firing", "ep2")))  # a new episode of the same alert: reopened
    [item] = book.items.values()
    assert item["status"] == "open" and item["reopened"] == 1 and item["correlationid"] == "ep2"
    assert [h["kind"] for h in item["history"]] == ["firing", "updated", "resolved", "firing"]
    changes = [(e.type, e.data["change"]) for e in announced(producer)]
    assert changes == [
        (CREATED, "created"),
        (UPDATED, "merged"),
        (RESOLVED, "resolved_by_source"),
        (UPDATED, "reopened"),
    ]


async def test_a_resolution_never_opens_a_todo_of_its_own(tmp_path: Path) -> None:
    st, book, producer = stage(tmp_path)
    await st.handle(Received(am("resolved", "ep1")))
    assert len(book.items) == 0 and producer.sent == []


async def test_a_configured_key_merges_duplicates_of_different_alerts(tmp_path: Path) -> None:
    template = "{{ data.labels.alertname }}"
    st, book, _ = stage(tmp_path, merge_keys={"prometheus.alert.firing": template})
    await st.handle(Received(am("firing", "ep1")))
    other = am("firing", "ep9")
    other = CloudEvent.create(
        type=other.type, source=other.source, subject="fp2", data=other.data, extensions=other.extensions
    )
    await st.handle(Received(other))
    [item] = book.items.values()
    assert item["count"] == 2 and item["key"] == "alert|HostOutOfDiskSpace"


async def test_a_throttled_recurrence_of_a_handled_alert_opens_its_todo_which_the_resolution_closes(
    tmp_path: Path,
) -> None:
    st, book = handling_stage(tmp_path)
    fired = am("firing", "ep1", alertname="HostDiskUsageHigh")
    await st.handle(Received(fired))
    assert len(book.items) == 0  # handled: a rule runs the remediation
    updated = am("updated", "ep1", value="2", alertname="HostDiskUsageHigh")
    await st.handle(Received(updated))
    held = notice(updated, "whale.rule.throttled", rule_id="disk-alert", suppressed=1, next_allowed="x")
    held.data["incident"] = reference(updated)
    await st.handle(results(held))
    [item] = book.items.values()
    assert item["origin"] == "throttled" and item["status"] == "open"
    assert "disk-alert held back a recurrence" in item["history"][-1]["text"]
    assert item["title"].startswith("HostDiskUsageHigh on vm-web-01:9100")
    await st.handle(Received(am("resolved", "ep1", alertname="HostDiskUsageHigh")))
    assert book.items[item["id"]]["status"] == "resolved"
    late = notice(updated, "whale.rule.throttled", rule_id="disk-alert", suppressed=2, next_allowed="x")
    late.data["incident"] = reference(updated)
    await st.handle(results(late))  # about the episode that already resolved: recorded only
    assert book.items[item["id"]]["status"] == "resolved"
    refired = am("firing", "ep2", alertname="HostDiskUsageHigh")
    again = notice(refired, "whale.rule.throttled", rule_id="disk-alert", suppressed=1, next_allowed="x")
    again.data["incident"] = reference(refired)
    await st.handle(results(again))
    assert book.items[item["id"]]["status"] == "open" and book.items[item["id"]]["reopened"] == 1
    assert len(book.items) == 1


async def test_a_render_failure_opens_a_todo_saying_which_rule_and_why(tmp_path: Path) -> None:
    st, book, _ = stage(tmp_path)
    fired = am("firing", "ep1")
    failed = notice(
        fired, "whale.rule.render_failed", rule_id="disk", reason="params.log_dir: 'x' is undefined"
    )
    failed.data["incident"] = reference(fired)
    await st.handle(results(failed))
    [item] = book.items.values()
    assert item["origin"] == "render_failed" and item["key"] == f"alert|{SOURCE}|fp1"
    assert "could not be rendered" in item["history"][0]["text"] and "undefined" in item["history"][0]["text"]


async def test_a_failed_remediation_joins_the_todo_of_the_alert_episode_that_caused_it(
    tmp_path: Path,
) -> None:
    st, book = handling_stage(tmp_path)
    fired = am("firing", "ep1", alertname="HostDiskUsageHigh")
    await st.handle(Received(fired))  # handled: the episode's incident is remembered
    run = notice(
        fired,
        "whale.workflow.failed",
        target={"kind": "workflow", "name": "disk.remediate"},
        error={"message": "task 'cleanup' failed: permission denied"},
    )
    await st.handle(results(run))
    [item] = book.items.values()
    assert item["origin"] == "run_failed" and item["key"] == f"alert|{SOURCE}|fp1"
    assert item["title"].startswith("HostDiskUsageHigh on vm-web-01:9100")
    assert "workflow disk.remediate failed: task 'cleanup' failed" in item["history"][0]["text"]
    await st.handle(Received(am("resolved", "ep1", alertname="HostDiskUsageHigh")))
    assert book.items[item["id"]]["status"] == "resolved"


async def test_a_failed_run_of_no_known_incident_still_opens_a_todo(tmp_path: Path) -> None:
    st, book, _ = stage(tmp_path)
    cause = CloudEvent.create(type="whale.action.requested", source="x", data={})
    run = notice(
        cause, "whale.action.failed", target={"kind": "action", "name": "ping"}, error={"message": "boom"}
    )
    await st.handle(results(run))
    await st.handle(results(run))  # redelivered
    [item] = book.items.values()
    assert item["title"] == "action ping failed: boom" and item["count"] == 1


async def test_an_alert_a_rule_handles_on_enriched_fields_opens_no_todo(tmp_path: Path) -> None:
    from whale_todo.stage import TodoStage

    from whale.enrichment import EnrichmentSettings, build

    (tmp_path / "hosts.yaml").write_text("hosts: {vm-web-01: {user: ops, labels: {env: prod}}}")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "prod.yaml").write_text(
        "id: prod-disk\nmatch: {field: enrichment.host.labels.env, equals: prod}\n"
        "target: {kind: workflow, name: disk.remediate}\n"
    )
    plain, book, producer = stage(tmp_path)
    enricher = build(EnrichmentSettings(inventory=[tmp_path / "hosts.yaml"]))
    enriched = TodoStage(plain._settings, producer, plain._rules, book, enricher)
    await enriched.handle(Received(am("firing", "ep1")))
    assert len(book.items) == 0
