"""The worker's action request record is the one to_binary writes for action_request's event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from whale_rule_engine.engine import Trigger, action_request, plan
from whale_rule_engine.outbound import encode_json, request_message

from whale.binding import from_kafka, to_binary
from whale.cloudevent import CloudEvent, parse_time
from whale.light_event import decode
from whale.rules.model import Rule

SOURCE = "whale/rule-engine"


def _rule(params: Any, throttle: bool = False) -> Rule:
    doc: dict[str, Any] = {
        "id": "r1",
        "match": {"all": [{"field": "type", "equals": "alert.fired"}]},
        "target": {"kind": "action", "name": "core.noop", "pool": "default"},
        "params": params,
    }
    if throttle:
        doc["throttle"] = {"key": "{{ data.host }}", "per": "1m", "limit": 1}
    return Rule.model_validate(doc)


def _triggers(params: Any, **extensions: Any) -> list[Trigger]:
    event = CloudEvent.create(
        type="alert.fired",
        source="test/outbound",
        subject="web-1",
        data={"host": "web-1", "value": 99.5, "text": 'é ✓ "q"'},
        extensions=extensions,
    )
    light = decode(to_binary(event))
    found, failures = plan([_rule(params)], light)
    assert not failures
    return found


@pytest.mark.parametrize(
    ("params", "extensions"),
    [
        ({"host": "{{ data.host }}", "v": "{{ data.value }}"}, {}),
        ({"text": "{{ data.text }}", "list": [1, 2.5, None, True]}, {"correlationid": "c-9"}),
        ({}, {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=b"}),
    ],
)
def test_the_request_record_matches_the_model_written_in_binary_mode(
    params: Any, extensions: dict[str, Any]
) -> None:
    (trigger,) = _triggers(params, **extensions)
    old = to_binary(action_request(trigger, source=SOURCE), key=trigger.idempotency_key)
    new = request_message(trigger, source=SOURCE)
    assert new.key == old.key
    assert new.value == old.value
    assert [name for name, _ in new.headers] == [name for name, _ in old.headers]
    untimed = [h for h in new.headers if h[0] != "ce_time"]
    assert untimed == [h for h in old.headers if h[0] != "ce_time"]
    assert parse_time(new.header_text("ce_time") or "").tzinfo is not None
    assert from_kafka(new).model_dump(exclude={"time"}) == from_kafka(old).model_dump(exclude={"time"})


def test_the_request_time_is_written_as_the_model_writes_it() -> None:
    (trigger,) = _triggers({})
    now = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    assert (
        request_message(trigger, source=SOURCE, now=now).header_text("ce_time")
        == "2026-01-02T03:04:05.000600Z"
    )


def test_json_orjson_refuses_is_written_as_json_writes_it() -> None:
    assert encode_json({"n": 2**70, 1: "x"}) == b'{"n":1180591620717411303424,"1":"x"}'
    assert encode_json({"when": datetime(2026, 1, 2, tzinfo=UTC)}) == b'{"when":"2026-01-02 00:00:00+00:00"}'
