"""The rule-engine worker (`whale run rule-engine`, Faust) against the real Kafka."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from whale import topics
from whale.binding import KafkaMessage, from_kafka
from whale.cloudevent import CloudEvent
from whale.compacted import delete, put
from whale.producer import EventProducer
from whale.rules.model import validate_rule
from whale.testing import Tap

from .re_helpers import Scope, Worker, send

pytestmark = pytest.mark.integration

TapFactory = Callable[[str, Callable[[KafkaMessage], bool]], Tap]


def write_rules(directory: Path, *rules: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for rule in rules:
        (directory / f"{rule['id']}.yaml").write_text(yaml.safe_dump(rule))
    return directory


def alert_rule(scope: Scope, rule_id: str = "disk", **over: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"{scope.tag}-{rule_id}",
        "match": {"all": [{"field": "type", "equals": scope.type}, {"field": "data.value", "greater": 85}]},
        "target": {"kind": "action", "name": "create_ticket", "pool": scope.pool},
        "params": {"title": "disk full on {{ data.host }}", "value": "{{ data.value }}"},
        "throttle": {"key": "{{ data.host }}", "once_within": "1h"},
    }
    rule.update(over)
    return rule


def alert(scope: Scope, host: str = "web-1", value: float = 91.0, **data: Any) -> CloudEvent:
    return CloudEvent.create(
        type=scope.type, source=f"test/{scope.tag}", subject=host, data={"host": host, "value": value, **data}
    )


def throttled_of(scope: Scope) -> Callable[[KafkaMessage], bool]:
    def keep(msg: KafkaMessage) -> bool:
        return msg.header_text("ce_type") == "whale.rule.throttled" and (
            msg.header_text("ce_subject") or ""
        ).startswith(scope.tag)

    return keep


def test_worker_matches_a_real_event_and_emits_an_action_request(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """An event on whale.events that matches a rule becomes one whale.action.requested on the pool's
    topic, with rule id/version, rendered params, idempotency key and causation/correlation; the
    same event delivered again yields the same request id and idempotency key (not a throttle)."""
    rules = write_rules(
        tmp_path / "rules",
        alert_rule(scope),
        alert_rule(scope, "never", match={"field": "type", "equals": "x"}),
    )
    actions = tap(scope.actions_topic, lambda m: True)
    worker = workers(scope.app_id, rules)
    worker.wait_ready()
    low = alert(scope, value=10.0)
    high = alert(scope, host="web-7")
    send(producer, topics.EVENTS, low)
    send(producer, topics.EVENTS, high)
    got = [from_kafka(m) for m in actions.wait_messages(1)]
    assert len(got) == 1
    request = got[0]
    assert request.type == "whale.action.requested"
    assert request.data["rule"] == {"id": f"{scope.tag}-disk", "version": 1}
    assert request.data["target"] == {"kind": "action", "name": "create_ticket", "pool": scope.pool}
    assert request.data["params"] == {"title": "disk full on web-7", "value": 91.0}
    assert request.data["idempotency_key"].startswith(f"{scope.tag}-disk:1:")
    assert request.extensions["causationid"] == high.id and request.extensions["correlationid"] == high.id
    assert actions.messages[0].key == request.data["idempotency_key"].encode()
    assert len(actions.settle()) == 1
    send(producer, topics.EVENTS, high)  # the same event again, as after a crash before the commit
    again = from_kafka(actions.wait_messages(2)[1])
    assert again.id == request.id and again.data["idempotency_key"] == request.data["idempotency_key"]
    assert "whale_rule_engine_actions_requested_total" in worker.metrics()


def test_rule_changes_on_whale_rules_apply_live(
    scope: Scope,
    workers: Callable[..., Worker],
    tap: TapFactory,
    producer: EventProducer,
    re_settings: Any,
) -> None:
    """A rule saved on the compacted topic is used without restart; a new version replaces it; a
    tombstone removes it."""
    actions = tap(scope.actions_topic, lambda m: True)
    worker = workers(scope.app_id)
    worker.wait_ready()
    doc = alert_rule(scope, "live", throttle=None)
    rule_id = doc["id"]
    sentinel = validate_rule(alert_rule(scope, "sentinel", throttle=None, params={"title": "sentinel"}))

    async def save(rule_doc: dict[str, Any] | None, key: str) -> None:
        if rule_doc is None:
            await delete(producer, topics.RULES, key)
        else:
            await put(producer, topics.RULES, key, validate_rule(rule_doc).to_event())

    try:
        asyncio.run(save(doc, rule_id))
        asyncio.run(save(sentinel.document(), sentinel.id))

        def requests_for(rid: str) -> list[CloudEvent]:
            return [e for e in (from_kafka(m) for m in actions.messages) if e.data["rule"]["id"] == rid]

        # v1 (the view may take a moment: resend until the rule is live)
        for _ in range(30):
            send(producer, topics.EVENTS, alert(scope, host="a"))
            actions.wait_messages(1, timeout=2)
            if requests_for(rule_id):
                break
        assert requests_for(rule_id)[0].data["params"]["title"] == "disk full on a"

        asyncio.run(save({**doc, "version": 2, "params": {"title": "v2 {{ data.host }}"}}, rule_id))
        for _ in range(30):
            send(producer, topics.EVENTS, alert(scope, host="b"))
            actions.settle(1.0)
            if any(e.data["rule"]["version"] == 2 for e in requests_for(rule_id)):
                break
        v2 = [e for e in requests_for(rule_id) if e.data["rule"]["version"] == 2]
        assert v2 and v2[0].data["params"] == {"title": "v2 b"}

        asyncio.run(save(None, rule_id))
        for _ in range(30):
            before = len(requests_for(rule_id))
            send(producer, topics.EVENTS, alert(scope, host="c"))
            seen_sentinels = len(requests_for(sentinel.id))
            actions.wait_messages(seen_sentinels + 1, timeout=5)
            actions.settle(1.0)
            if len(requests_for(rule_id)) == before:
                break
        # same partition key: the sentinel's request proves the event was processed after the delete
        last = alert(scope, host="d")
        count = len(requests_for(sentinel.id))
        before = len(requests_for(rule_id))
        send(producer, topics.EVENTS, last)
        for _ in range(50):
            actions.settle(0.5)
            if len(requests_for(sentinel.id)) > count:
                break
        assert len(requests_for(sentinel.id)) > count
        assert len(requests_for(rule_id)) == before
    finally:
        asyncio.run(save(None, sentinel.id))
        asyncio.run(save(None, rule_id))


def test_a_burst_of_100_identical_alerts_makes_one_request_and_99_throttle_notices(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """The token bucket lets one trigger through per key and reports every suppressed one."""
    rules = write_rules(tmp_path / "rules", alert_rule(scope))
    actions = tap(scope.actions_topic, lambda m: True)
    notices = tap(topics.RESULTS, throttled_of(scope))
    worker = workers(scope.app_id, rules)
    worker.wait_ready()
    for _ in range(100):
        producer_event = alert(scope, host="web-1")
        send(producer, topics.EVENTS, producer_event)
    got = notices.wait_messages(99)
    assert len(actions.settle()) == 1
    assert len(notices.settle()) == 99
    data = [from_kafka(m).data for m in got]
    assert sorted(d["suppressed"] for d in data) == list(range(1, 100))
    assert {d["key"] for d in data} == {"web-1"} and {d["rule_id"] for d in data} == {f"{scope.tag}-disk"}
    assert all(d["next_allowed"].endswith("Z") for d in data)


def test_throttle_state_survives_a_worker_restart(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """The bucket lives in a changelog-backed table: after a restart the same key is still throttled."""
    throttled_across_restart(scope, workers, tap, producer, tmp_path)


def throttled_across_restart(
    scope: Scope,
    workers: Callable[..., Worker],
    tap: TapFactory,
    producer: EventProducer,
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    while_down: Callable[[], None] = lambda: None,
) -> None:
    """web-1 passes on a first worker; ``while_down`` runs between it and a second one, on which
    web-1 is throttled and web-2 still passes."""
    rules = write_rules(tmp_path / "rules", alert_rule(scope))
    actions = tap(scope.actions_topic, lambda m: True)
    notices = tap(topics.RESULTS, throttled_of(scope))
    first = workers(scope.app_id, rules, name="first", env=env)
    first.wait_ready()
    send(producer, topics.EVENTS, alert(scope, host="web-1"))
    assert len(actions.wait_messages(1)) == 1
    actions.settle(3.0)  # let the table's changelog write and the offset commit happen
    assert first.stop() == 0
    while_down()
    second = workers(scope.app_id, rules, name="second", env=env)
    second.wait_ready()
    send(producer, topics.EVENTS, alert(scope, host="web-1"))
    send(producer, topics.EVENTS, alert(scope, host="web-2"))
    assert len(notices.wait_messages(1)) == 1
    assert len(actions.wait_messages(2)) == 2
    keys = [from_kafka(m).data["params"]["title"] for m in actions.settle()]
    assert keys == ["disk full on web-1", "disk full on web-2"]
    assert from_kafka(notices.messages[0]).data["key"] == "web-1"


def test_kill_9_mid_burst_never_lets_a_second_trigger_through(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """A worker killed with SIGKILL during a burst, then restarted: replayed triggers may repeat a
    request, but only with the same idempotency key; every alert is either requested or throttled."""
    rules = write_rules(tmp_path / "rules", alert_rule(scope))
    actions = tap(scope.actions_topic, lambda m: True)
    notices = tap(topics.RESULTS, throttled_of(scope))
    first = workers(scope.app_id, rules, name="first")
    first.wait_ready()
    keys = [f"host-{i}" for i in range(5)]
    sent = [alert(scope, host=keys[n % 5]) for n in range(200)]
    for event in sent[:100]:
        send(producer, topics.EVENTS, event)
    actions.wait_messages(1)
    first.kill9()
    second = workers(scope.app_id, rules, name="second")
    for event in sent[100:]:
        send(producer, topics.EVENTS, event)
    second.wait_ready()
    expected = {e.id for e in sent}
    deadline = time.monotonic() + 240  # the dead member's partitions move once its session times out
    while time.monotonic() < deadline:
        decided = {from_kafka(m).extensions["causationid"] for m in [*actions.messages, *notices.messages]}
        if expected <= decided:
            break
        time.sleep(0.5)
    requests = [from_kafka(m) for m in actions.settle(5.0)]
    throttled = [from_kafka(m) for m in notices.settle(3.0)]
    by_host: dict[str, set[str]] = {}
    for r in requests:
        by_host.setdefault(r.data["params"]["title"], set()).add(r.data["idempotency_key"])
    assert sorted(by_host) == sorted(f"disk full on {k}" for k in keys)
    assert all(len(ids) == 1 for ids in by_host.values()), by_host
    requested = {r.extensions["causationid"] for r in requests}
    suppressed = {t.extensions["causationid"] for t in throttled}
    assert requested | suppressed == {e.id for e in sent} and not requested & suppressed


def test_two_workers_share_partitions_without_double_triggering(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """Two workers in one group: each key triggers exactly once though its alerts arrive on
    different partitions (the throttle stage is repartitioned by key)."""
    rules = write_rules(tmp_path / "rules", alert_rule(scope))
    actions = tap(scope.actions_topic, lambda m: True)
    notices = tap(topics.RESULTS, throttled_of(scope))
    one = workers(scope.app_id, rules, name="one")
    two = workers(scope.app_id, rules, name="two")
    one.wait_ready()
    two.wait_ready()
    keys = [f"host-{i}" for i in range(10)]
    for round_ in range(6):
        for i, key in enumerate(keys):
            event = alert(scope, host=key)
            send(producer, topics.EVENTS, event, key=f"spread-{round_}-{i}")  # spread over partitions
    notices.wait_messages(50, timeout=120)
    requests = [from_kafka(m).data for m in actions.settle(5.0)]
    assert sorted(r["params"]["title"] for r in requests) == sorted(f"disk full on {k}" for k in keys)
    assert len(notices.settle()) == 50
    processed = [w.metrics() for w in (one, two)]
    assert all("whale_rule_engine_events_total" in text for text in processed)


def test_render_failures_and_injection_attempts_land_in_the_dlq_with_reasons(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """Missing fields and SSTI payloads in params fail safely: the event goes to whale.dlq with the
    rule id and the reason; an unreadable message too; the worker goes on."""
    payloads = [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ '{0.__class__}'.format(data) }}",
    ]
    rules = [alert_rule(scope, "missing", throttle=None, params={"t": "{{ data.nope }}"})]
    rules += [alert_rule(scope, f"ssti{i}", throttle=None, params={"t": p}) for i, p in enumerate(payloads)]
    rules.append(alert_rule(scope, "fine", throttle=None, params={"t": "ok {{ data.host }}"}))
    rules_dir = write_rules(tmp_path / "rules", *rules)

    def ours(m: KafkaMessage) -> bool:
        mine = bool(m.header_text("whale_dlq_rule")) or m.header_text("x-test") == scope.tag
        return m.header_text("whale_dlq_group") == scope.app_id and mine

    dlq = tap(topics.DLQ, ours)
    actions = tap(scope.actions_topic, lambda m: True)
    worker = workers(scope.app_id, rules_dir)
    worker.wait_ready()
    event = alert(scope)
    send(producer, topics.EVENTS, event)
    producer.send_blocking(
        topics.EVENTS, KafkaMessage(b"k", b"\x00not an event", (("x-test", scope.tag.encode()),))
    )
    got = dlq.wait_messages(5)
    assert len(dlq.settle()) == 5
    by_rule = {m.header_text("whale_dlq_rule"): m.header_text("whale_dlq_reason") or "" for m in got}
    assert "nope" in by_rule[f"{scope.tag}-missing"]
    for i in range(len(payloads)):
        assert f"rule {scope.tag}-ssti{i} v1" in by_rule[f"{scope.tag}-ssti{i}"]
    assert by_rule[None].startswith("unreadable")
    for m in got:
        if m.header_text("whale_dlq_rule"):
            assert m.header_text("ce_id") == event.id and json.loads(m.value or b"{}")["host"] == "web-1"
    requests = [from_kafka(m).data for m in actions.wait_messages(1)]
    assert [r["params"] for r in requests] == [{"t": "ok web-1"}]
