"""Planning an event: matched rules render params and throttle keys; failures carry rule and reason."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from whale_rule_engine.engine import (
    Trigger,
    action_request,
    idempotency_key,
    plan,
    render_failed_notice,
    throttled_notice,
)
from whale_rule_engine.throttle import decide

from whale.cloudevent import CloudEvent
from whale.light_event import LightEvent
from whale.rules.model import Rule, validate_rule

# Known server-side template-injection payloads, put in rule params.
SSTI_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ data.__class__.__base__.__subclasses__() }}",
    "{{ '{0.__class__}'.format(data) }}",
    "{{ 'a'|attr('__class__') }}",
    "{% set x = data.update({'a': 1}) %}{{ x }}",
    "{% import 'os' as os %}{{ os }}",
    "{% include '/etc/passwd' %}",
]


def rule(**over: Any) -> Rule:
    doc: dict[str, Any] = {
        "id": "disk",
        "version": 3,
        "match": {"field": "type", "equals": "alert.fired"},
        "target": {"kind": "action", "name": "ticket"},
        "params": {"title": "disk on {{ data.host }}", "value": "{{ data.value }}", "raw": 7},
        "throttle": {"key": "{{ data.host }}", "once_within": "10m"},
    }
    doc.update(over)
    return validate_rule(doc)


EVENT = CloudEvent.create(
    type="alert.fired",
    source="prom",
    subject="web-1",
    data={"host": "web-1", "value": 91},
    traceparent="00-abc",
)


def test_matched_rule_renders_params_with_native_types() -> None:
    """Params render from the event; a lone expression keeps its type; the key is deterministic."""
    triggers, failures = plan([rule()], EVENT)
    assert not failures
    t = triggers[0]
    assert t.params == {"title": "disk on web-1", "value": 91, "raw": 7}
    assert t.throttle_key == "web-1" and (t.capacity, t.refill_per_second) == (1, 1 / 600)
    assert t.idempotency_key == idempotency_key("disk", 3, "prom", EVENT.id)
    assert Trigger.from_bytes(t.to_bytes()) == replace(t, event=LightEvent.of(EVENT))  # read back light


def test_action_request_follows_the_contract() -> None:
    """The request carries rule id/version, target, params, idempotency key and causation."""
    t = plan([rule()], EVENT)[0][0]
    req = action_request(t, source="whale/rule-engine")
    again = action_request(Trigger.from_bytes(t.to_bytes()), source="whale/rule-engine")
    assert req.type == "whale.action.requested" and req.id == again.id
    assert req.data == {
        "rule": {"id": "disk", "version": 3},
        "target": {"kind": "action", "name": "ticket", "pool": "default"},
        "params": t.params,
        "idempotency_key": t.idempotency_key,
    }
    assert req.extensions["causationid"] == EVENT.id and req.extensions["correlationid"] == EVENT.id
    assert req.extensions["traceparent"] == "00-abc"
    d = decide(None, capacity=1, refill_per_second=1.0, now=0.0, idempotency_key="x")
    d = decide(d.state, capacity=1, refill_per_second=1.0, now=0.0, idempotency_key="y")
    notice = throttled_notice(t, d, source="whale/rule-engine")
    incident = notice.data.pop("incident")
    assert notice.data == {
        "rule_id": "disk",
        "key": "web-1",
        "suppressed": 1,
        "next_allowed": "1970-01-01T00:00:01Z",
    }
    assert incident["id"] == EVENT.id and incident["key"] == "alert.fired|web-1"


def test_a_render_failure_is_announced_with_the_rule_reason_and_incident_of_the_event() -> None:
    [failure] = plan([rule(params={"t": "{{ data.nope }}"})], EVENT)[1]
    notice = render_failed_notice(EVENT, failure, source="whale/rule-engine")
    assert notice.type == "whale.rule.render_failed"
    assert notice.extensions["causationid"] == EVENT.id
    assert notice.data["rule_id"] == "disk" and "nope" in notice.data["reason"]
    assert notice.data["incident"]["title"] == "alert.fired on web-1"


def test_missing_field_is_a_failure_with_rule_and_reason() -> None:
    """Strict undefined: a missing field fails the rule for this event, with the reason."""
    triggers, failures = plan([rule(params={"t": "{{ data.nope }}"}), rule(id="ok")], EVENT)
    assert [t.rule_id for t in triggers] == ["ok"]
    assert failures[0].rule_id == "disk" and "params.t" in failures[0].reason and "nope" in failures[0].reason


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_injection_payloads_fail_safely_as_failures(payload: str) -> None:
    """Template-injection payloads in params never run: they become failures (-> whale.dlq)."""
    triggers, failures = plan([rule(params={"p": payload})], EVENT)
    assert not triggers and failures and failures[0].rule_id == "disk"


def test_injection_through_event_data_is_inert() -> None:
    """Event data that looks like a template is data, not code."""
    evil = CloudEvent.create(type="alert.fired", source="x", data={"host": "{{ 7*7 }}", "value": 1})
    triggers, _ = plan([rule()], evil)
    assert triggers[0].params["title"] == "disk on {{ 7*7 }}"


SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


def test_emitted_events_fit_their_registered_schemas() -> None:
    """whale.action.requested, whale.rule.throttled and whale.rule.saved match schemas/events."""
    t = plan([rule()], EVENT)[0][0]
    d = decide(None, capacity=1, refill_per_second=1.0, now=0.0, idempotency_key="x")
    d = decide(d.state, capacity=1, refill_per_second=1.0, now=0.0, idempotency_key="y")
    for event in (
        action_request(t, source="s"),
        throttled_notice(t, d, source="s"),
        render_failed_notice(EVENT, plan([rule(params={"t": "{{ data.nope }}"})], EVENT)[1][0], source="s"),
        rule().to_event(),
        rule(throttle=None).to_event(),
    ):
        schema = json.loads((SCHEMAS / f"{event.type}.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(event.data)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"t": "{{ (7**6000000) % 10 }}"}, "power ('**')"),
        ({"t": "{{ 'a' * 100000000 }}"}, "repetition ('*')"),
        ({"t": "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"}, "steps"),
    ],
)
def test_a_render_past_a_sandbox_limit_is_a_limit_failure_with_the_reason(
    params: dict[str, Any], words: str
) -> None:
    """The other rules still plan; the failure is marked ``limit`` (dead-lettered as ``render_limit``)."""
    triggers, failures = plan([rule(id="evil", params=params, throttle=None), rule()], EVENT, timeout=600)
    assert [t.rule_id for t in triggers] == ["disk"]
    assert failures[0].rule_id == "evil" and failures[0].limit
    assert failures[0].reason.startswith("rule evil v3: params.t: ") and words in failures[0].reason


def test_the_render_deadline_covers_all_of_a_rules_templates() -> None:
    """A rule's throttle key and params share one budget: 60,000 steps each pass alone, not together."""
    loop = "{% for a in range(6000) %}{% for b in range(10) %}{% endfor %}{% endfor %}"
    alone, _ = plan([rule(id="one", params={"a": loop}, throttle=None)], EVENT, timeout=600)
    assert len(alone) == 1
    _, failures = plan([rule(id="two", params={"a": loop, "b": loop}, throttle=None)], EVENT, timeout=600)
    assert failures and failures[0].limit and "steps" in failures[0].reason
