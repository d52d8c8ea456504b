"""A dry-run (replayed) event's record: what it would request, its render failures, and its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from whale_rule_engine.engine import Failure, dry_run_record, plan

from .test_engine_plan import EVENT, rule

SCHEMA = Path(__file__).parents[2] / "schemas" / "events" / "whale.rule.dryrun.json"


def test_the_dry_run_record_lists_the_requests_it_would_send_and_is_caused_by_the_event() -> None:
    triggers, _ = plan([rule()], EVENT)
    failure = Failure(rule_id="broken", rule_version=1, reason="render failed")
    record = dry_run_record(EVENT, triggers, [failure], source="whale/rule-engine")
    assert record.type == "whale.rule.dryrun" and record.extensions["causationid"] == EVENT.id
    (would,) = record.data["would_request"]
    assert would["params"] == {"title": "disk on web-1", "value": 91, "raw": 7}
    assert would["throttle_key"] == "web-1" and would["rule"] == {"id": "disk", "version": 3}
    assert record.data["failures"] == [{"rule_id": "broken", "rule_version": 1, "reason": "render failed"}]
    jsonschema.validate(record.data, json.loads(SCHEMA.read_text()))
