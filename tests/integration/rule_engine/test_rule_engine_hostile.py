"""The rule engine keeps working when a hostile event is already on whale.events (written before
the edges refused it): the event goes to whale.dlq with the reason, the next event is matched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from whale import topics
from whale.binding import KafkaMessage, from_kafka
from whale.producer import EventProducer
from whale.testing import Tap

from .re_helpers import Scope, Worker, send
from .test_rule_engine_worker import alert, alert_rule, write_rules

pytestmark = pytest.mark.integration


def poison(scope: Scope, event_id: str, value: bytes) -> KafkaMessage:
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", f"test/{scope.tag}".encode()),
        ("ce_type", scope.type.encode()),
        ("content-type", b"application/json"),
    )
    return KafkaMessage(None, value, headers)


def test_old_over_deep_and_non_unicode_events_are_dead_lettered_and_matching_goes_on(
    scope: Scope,
    workers: Callable[..., Worker],
    tap: Callable[[str, Callable[[KafkaMessage], bool]], Tap],
    producer: EventProducer,
    tmp_path: Path,
) -> None:
    actions = tap(scope.actions_topic, lambda m: True)
    ids = {f"{scope.tag}-deep", f"{scope.tag}-surrogate"}
    # this worker's dead letters only: other consumers of whale.events on the shared broker (an
    # indexer, a to-do stage of another test) may dead-letter the same poison under their group
    dead = tap(
        topics.DLQ,
        lambda m: m.header_text("ce_id") in ids and m.header_text("whale_dlq_group") == scope.app_id,
    )
    worker = workers(scope.app_id, write_rules(tmp_path / "rules", alert_rule(scope, throttle=None)))
    worker.wait_ready()
    deep = ('{"host": "web-1", "value": 99, "x": ' + '{"a":' * 300 + "1" + "}" * 300 + "}").encode()
    producer.send_blocking(topics.EVENTS, poison(scope, f"{scope.tag}-deep", deep))
    bad_text = b'{"host": "web-\\ud800", "value": 99}'
    producer.send_blocking(topics.EVENTS, poison(scope, f"{scope.tag}-surrogate", bad_text))
    good = alert(scope, host="web-9")
    send(producer, topics.EVENTS, good)
    requested = [from_kafka(m) for m in actions.wait_messages(1)]
    assert [r.extensions["causationid"] for r in requested] == [good.id]
    reasons = [m.header_text("whale_dlq_reason") or "" for m in dead.wait_messages(2)]
    assert len(reasons) == 2 and all("data" in r for r in reasons)
