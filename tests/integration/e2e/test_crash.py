"""Crash safety: ``kill -9`` the rule engine and then the executor during a burst of disk alerts.

Every alert is for a distinct host, so no throttle applies: each must end in exactly one final
workflow state (``whale.workflow.completed`` or ``.failed``) — no alert lost, no run duplicated —
and the robot (the non-idempotent notify action) is told at most once per host.

The burst is the issue's 1,000 alerts (``WHALE_E2E_BURST`` changes it). Before the rule engine's
``SeekFirstRecovery`` a 1,000-alert run lost triggers: the restarted Faust throttle stage read
records of its repartition topic before seeking to the committed offsets and then acknowledged
them unhandled.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import pytest

from whale.cloudevent import CloudEvent
from whale.testing import Tap

from .harness import BURST, Platform, disk_alert, fill_log_dir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

BATCH = 25
FINAL = ("whale.workflow.completed", "whale.workflow.failed")


def _host(e: CloudEvent) -> str | None:
    output = e.data.get("output") if isinstance(e.data, dict) else None
    if not isinstance(output, dict):
        return None
    return output.get("host") or (output.get("input") or {}).get("host")


def _post(platform: Platform, alerts: list[dict[str, object]]) -> None:
    for i in range(0, len(alerts), BATCH):
        answer = platform.post_alerts(alerts[i : i + BATCH])
        assert answer.status_code == 202, answer.text


def test_every_alert_reaches_exactly_one_final_state_across_rule_engine_and_executor_kills(
    platform: Platform, results: Tap
) -> None:
    hosts = [platform.host("vm-crash") for _ in range(BURST)]
    ours = set(hosts)
    alerts = []
    for host in hosts:
        fill_log_dir(platform.log_dir(host), old=1, new=1)
        alerts.append(disk_alert(host))
    third = BURST // 3

    _post(platform, alerts[:third])
    platform.kill9("rule-engine")
    _post(platform, alerts[third : 2 * third])  # accepted while no rule engine runs
    platform.start("rule-engine")
    platform.wait_http(f"http://127.0.0.1:{platform.ports['rule-engine']}/readyz", "rule-engine")
    results.wait(lambda e: e.type == "whale.workflow.started" and _host(e) in ours, 10)
    platform.kill9("executor")  # with workflows in flight
    _post(platform, alerts[2 * third :])
    platform.start("executor")
    platform.wait_http(f"http://127.0.0.1:{platform.ports['executor']}/readyz", "executor")

    deadline = time.monotonic() + max(300.0, BURST * 1.5)
    while time.monotonic() < deadline:
        runs = {e.subject: _host(e) for e in results.events if e.type == "whale.workflow.started"}
        finals: dict[str, set[str]] = defaultdict(set)
        for e in results.events:
            if e.type in FINAL:
                named = _host(e) or runs.get(e.subject)
                if named is not None and named in ours:
                    finals[named].add(e.id)
        if len(finals) == len(ours):
            break
        with open(platform.workdir / "crash-progress.log", "a") as progress:
            progress.write(
                f"{time.strftime('%X')} finished {len(finals)}/{len(ours)} seen {len(results.events)}\n"
            )
        results.poll(2.0)
    results.poll(5.0)  # late duplicates would show up here
    runs = {e.subject: _host(e) for e in results.events if e.type == "whale.workflow.started"}
    finals = defaultdict(set)
    for e in results.events:
        if e.type in FINAL:
            named = _host(e) or runs.get(e.subject)
            if named is not None and named in ours:
                finals[named].add(e.id)
    missing = sorted(ours - set(finals))
    assert not missing, (
        f"{len(missing)} alerts never finished, e.g. {missing[:5]}\n{platform.tail('executor')}"
    )
    duplicated = {h: ids for h, ids in finals.items() if len(ids) > 1}
    assert not duplicated, f"alerts with more than one final state: {list(duplicated.items())[:5]}"
    runs_per_host = Counter(h for h in runs.values() if h in ours)
    assert max(runs_per_host.values()) == 1, runs_per_host.most_common(3)
    told = Counter(
        t.splitlines()[0].removeprefix("## Disk cleanup on ").strip() for t in platform.robot.texts()
    )
    assert all(told[h] <= 1 for h in ours), [h for h in ours if told[h] > 1][:5]
    for host in hosts:  # the cleanup ran (old file gone) and nothing else was touched
        assert sorted(p.name for p in platform.log_dir(host).iterdir()) == ["new-0.log"]
