"""An alert episode is one entity: firing, then an event per change (updated), then resolved."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml
from whale_adapters.alertmanager import observe
from whale_adapters.lifecycle import STATE_TYPE, AlertBook, Episode, state_key

from whale import topics
from whale.cloudevent import CloudEvent
from whale.rules.matching import matches
from whale.rules.paths import event_context
from whale.testing import FakeProducer

from .payloads import alert, notification

SOURCE = "/am"


def _send(book: AlertBook, producer: FakeProducer, *alerts: dict[str, Any]) -> list[CloudEvent]:
    observed = observe(notification(*alerts), source=SOURCE, book=book)
    for a in observed:
        asyncio.run(book.record(producer, a.identity, a.step))  # type: ignore[arg-type]
    return [a.event for a in observed]


def _valued(value: str, status: str = "firing", **extra: Any) -> dict[str, Any]:
    return alert("fp1", status, annotations={"summary": "disk", "value": value}, **extra)


class RecordedState:
    """The compacted topic as another replica (or a restarted adapter) would read it."""

    def __init__(self, producer: FakeProducer) -> None:
        self._producer = producer

    def get(self, key: str) -> CloudEvent | None:
        found: CloudEvent | None = None
        for topic, event, k in self._producer.sent:
            if topic == topics.ADAPTER_STATE and k == key:
                found = event
        for topic, message in self._producer.messages:
            if topic == topics.ADAPTER_STATE and message.key == key.encode():
                found = None
        return found


def test_the_first_notification_fires_and_a_changed_value_is_an_update_of_the_same_episode() -> None:
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    [fired] = _send(book, producer, _valued("60.2"))
    [updated] = _send(book, producer, _valued("95.3"))
    assert (fired.extensions["alertstate"], updated.extensions["alertstate"]) == ("firing", "updated")
    assert fired.type == updated.type == "prometheus.alert.firing"  # rules on firing see every value
    assert updated.id != fired.id
    assert updated.data["annotations"]["value"] == "95.3"
    assert fired.extensions["correlationid"] == updated.extensions["correlationid"]


def test_a_resent_notification_with_nothing_changed_keeps_its_id_so_dedupe_drops_it() -> None:
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    [fired] = _send(book, producer, _valued("60.2"))
    [again] = _send(book, producer, _valued("60.2", endsAt="2026-11-23T10:04:00Z"))  # endsAt moves
    [updated] = _send(book, producer, _valued("95.3"))
    [update_again] = _send(book, producer, _valued("95.3"))
    assert again.id == fired.id
    assert update_again.id == updated.id
    assert update_again.extensions["alertstate"] == "updated"


def test_a_value_going_back_to_an_earlier_one_is_still_an_update() -> None:
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    ids = [_send(book, producer, _valued(v))[0].id for v in ("60.2", "95.3", "60.2")]
    assert len(set(ids)) == 3


def test_the_resolution_carries_the_episode_correlation_and_a_refiring_starts_a_new_episode() -> None:
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    [fired] = _send(book, producer, _valued("60.2"))
    [resolved] = _send(book, producer, _valued("60.2", "resolved"))
    [again] = _send(book, producer, _valued("70.0", startsAt="2026-11-23T12:00:00Z"))
    assert resolved.type == "prometheus.alert.resolved"
    assert resolved.extensions["alertstate"] == "resolved"
    assert resolved.extensions["correlationid"] == fired.extensions["correlationid"]
    assert again.extensions["alertstate"] == "firing"
    assert again.extensions["correlationid"] != fired.extensions["correlationid"]


def test_the_episode_is_kept_on_the_state_topic_so_a_restarted_adapter_still_sees_updates() -> None:
    producer = FakeProducer()
    _send(AlertBook("alertmanager", SOURCE), producer, _valued("60.2"))
    record = RecordedState(producer).get(state_key("alertmanager", "fp1"))
    assert record is not None and record.type == STATE_TYPE
    assert Episode.from_record(record) is not None
    restarted = AlertBook("alertmanager", SOURCE, RecordedState(producer))
    [event] = _send(restarted, producer, _valued("95.3"))
    assert event.extensions["alertstate"] == "updated"


def test_a_resolution_deletes_the_episode_record() -> None:
    producer = FakeProducer()
    book = AlertBook("alertmanager", SOURCE, RecordedState(producer))
    _send(book, producer, _valued("60.2"))
    _send(book, producer, _valued("60.2", "resolved"))
    assert RecordedState(producer).get(state_key("alertmanager", "fp1")) is None
    assert book.current("fp1") is None


def test_a_resend_writes_no_new_state_record() -> None:
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    _send(book, producer, _valued("60.2"))
    _send(book, producer, _valued("60.2"))
    assert len([t for t, _, _ in producer.sent if t == topics.ADAPTER_STATE]) == 1


def test_the_shipped_disk_rule_matches_an_update_and_rules_can_match_the_lifecycle_step() -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
    rule = yaml.safe_load((root / "rules" / "disk-capacity.yaml").read_text())
    payload = json.loads((root / "payloads" / "disk-alert.json").read_text())
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    first = _send(book, producer, *payload["alerts"])[0]
    payload["alerts"][0]["annotations"]["value"] = "97.0"
    updated = _send(book, producer, *payload["alerts"])[0]
    assert updated.extensions["alertstate"] == "updated"
    assert matches(rule["match"], event_context(updated))
    only_updates = {"all": [rule["match"], {"field": "alertstate", "equals": "updated"}]}
    assert matches(only_updates, event_context(updated))
    assert not matches(only_updates, event_context(first))


def test_an_update_names_what_changed_and_carries_the_earlier_values_also_after_a_restart() -> None:
    book, producer = AlertBook("alertmanager", SOURCE), FakeProducer()
    [fired] = _send(book, producer, _valued("60.2"))
    assert "changed" not in fired.data and "previous" not in fired.data
    restarted = AlertBook("alertmanager", SOURCE, RecordedState(producer))  # type: ignore[arg-type]
    [updated] = _send(restarted, producer, _valued("95.3"))
    assert updated.data["changed"] == ["annotations.value"]
    assert updated.data["previous"] == {"annotations": {"value": "60.2"}}
    rule = yaml.safe_load("{match: {field: type, equals: prometheus.alert.firing}, on: updated}")
    assert rule[True] == "updated"  # YAML 1.1 reads the key `on` as true: the rule loader maps it back
