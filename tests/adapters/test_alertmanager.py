"""Alertmanager payloads become one event per alert, with ids stable across re-sends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from whale_adapters.alertmanager import FIRING, RESOLVED, alert_events
from whale_adapters.errors import PayloadError

from .payloads import alert, notification


def test_each_alert_of_a_group_becomes_one_event_with_fingerprint_subject_and_alert_data() -> None:
    events = alert_events(notification(alert("fp1"), alert("fp2", instance="db2:9100")), source="/am")
    assert [(e.type, e.subject) for e in events] == [(FIRING, "fp1"), (FIRING, "fp2")]
    first = events[0]
    assert first.source == "/am"
    assert first.time == datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
    assert first.data["labels"]["instance"] == "db1:9100"
    assert first.data["annotations"] == {"summary": "CPU high on db1:9100"}
    assert set(first.data) >= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


def test_a_resent_notification_gives_the_same_ids_and_resolution_a_different_one() -> None:
    once = alert_events(notification(alert("fp1")), source="/am")
    again = alert_events(notification(alert("fp1")), source="/am")
    resolved = alert_events(notification(alert("fp1", "resolved")), source="/am")
    assert once[0].id == again[0].id
    assert resolved[0].id != once[0].id
    assert resolved[0].type == RESOLVED
    assert resolved[0].time == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_a_refiring_alert_with_a_new_start_gets_a_new_id() -> None:
    first = alert_events(notification(alert("fp1")), source="/am")[0]
    later = alert_events(notification(alert("fp1", startsAt="2026-11-23T12:00:00Z")), source="/am")[0]
    assert first.id != later.id


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"version": "3", "alerts": []}, "version"),
        ({"version": "4", "alerts": {}}, "alerts"),
        (notification(alert("fp1", status="pending")), "alerts[0].status"),
        (notification(alert("")), "alerts[0].fingerprint"),
        (notification(alert("fp1", labels=[])), "alerts[0].labels"),
        (notification(alert("fp1", startsAt="yesterday")), "alerts[0].startsAt"),
    ],
)
def test_bad_payloads_name_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(PayloadError) as info:
        alert_events(payload, source="/am")
    assert info.value.problems[0]["field"] == field
