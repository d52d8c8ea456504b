"""Rule model and validation: precise refusals, catalogue and schema checks, directory loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from whale.cloudevent import CloudEvent
from whale.rules.files import load_rules_dir
from whale.rules.model import RuleError, parse_duration, validate_rule
from whale.rules.references import schema_allows

CATALOG = {
    "ops": CloudEvent.create(
        type="whale.catalog.published",
        source="whale/executor/ops",
        data={
            "pool": "ops",
            "actions": [
                {
                    "name": "create_ticket",
                    "kind": "python",
                    "description": "open a ticket",
                    "params_schema": {
                        "type": "object",
                        "required": ["title"],
                        "properties": {"title": {"type": "string"}, "priority": {"type": "integer"}},
                        "additionalProperties": False,
                    },
                    "idempotent": True,
                }
            ],
            "workflows": [],
        },
    )
}
SCHEMAS = {
    "alert.fired": CloudEvent.create(
        type="whale.schema.registered",
        source="whale/event-center",
        data={
            "type": "alert.fired",
            "versions": [
                {
                    "version": 1,
                    "registered_at": "2026-11-23T00:00:00Z",
                    "schema": {
                        "type": "object",
                        "properties": {
                            "value": {"type": "number"},
                            "labels": {"type": "object", "properties": {"instance": {"type": "string"}}},
                            "alerts": {"type": "array", "items": {"type": "object"}},
                        },
                        "additionalProperties": False,
                    },
                }
            ],
        },
    )
}


def rule(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "disk-full",
        "match": {
            "all": [{"field": "type", "equals": "alert.fired"}, {"field": "data.value", "greater": 85}]
        },
        "target": {"kind": "action", "name": "create_ticket", "pool": "ops"},
        "params": {"title": "disk full on {{ data.labels.instance }}", "priority": 2},
        "throttle": {"key": "{{ data.labels.instance }}", "once_within": "10m"},
    }
    doc.update(over)
    return doc


def problems_of(doc: Any) -> list[dict[str, str]]:
    with pytest.raises(RuleError) as caught:
        validate_rule(doc, CATALOG, SCHEMAS)
    return caught.value.problems


def test_a_good_rule_validates_with_defaults() -> None:
    """A complete rule comes back compiled, version 1, enabled, throttle as a bucket."""
    got = validate_rule(rule(), CATALOG, SCHEMAS)
    assert got.version == 1 and got.enabled
    assert got.condition.evaluate({"type": "alert.fired", "data": {"value": 90}})
    assert got.throttle is not None and got.throttle.bucket() == (1, 1 / 600)
    assert got.to_event().data["id"] == "disk-full"


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"match": {"field": "data.value", "regex": "("}}, "match.regex", "invalid regular expression"),
        ({"match": {"field": "data.value", "near": 3}}, "match.near", "unknown operator"),
        ({"match": {"all": [{"field": "data.value", "greater": "x"}]}}, "match.all[0].greater", "neither"),
        ({"params": {"title": "{{ data.value "}}, "params.title", "template syntax error"),
        ({"throttle": {"key": "{% if %}", "once_within": "1m"}}, "throttle.key", "template syntax error"),
        ({"throttle": {"once_within": "soon"}}, "throttle.once_within", "not a duration"),
        (
            {"target": {"kind": "action", "name": "nope", "pool": "ops"}},
            "target.name",
            "unknown action 'nope'",
        ),
        ({"params": {"title": 3}}, "params.title", "params_schema"),
        ({"params": {"priority": 1}}, "params", "'title' is a required property"),
        ({"params": {"title": "x", "extra": 1}}, "params", "Additional properties"),
        (
            {
                "match": {
                    "all": [{"field": "type", "equals": "alert.fired"}, {"field": "data.cpu", "exists": True}]
                }
            },
            "match.all[1]",
            "cannot occur in events of type alert.fired",
        ),
        ({"params": {"title": "{{ data.host.name }}"}}, "params.title", "'data.host.name' cannot occur"),
        ({"throttle": {"key": "{{ data.nohost }}", "once_within": "1m"}}, "throttle.key", "cannot occur"),
        ({"id": "bad id!"}, "id", "id must be"),
        ({"target": {"kind": "job", "name": "x"}}, "target.kind", "'action' or 'workflow'"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_rules_are_refused_with_precise_messages(
    over: dict[str, Any], field: str, words: str
) -> None:
    """Bad regex, unknown operator, wrong operand, template errors, unknown target, params that
    fail the catalogue schema and fields the registered schema cannot contain are all refused."""
    found = problems_of(rule(**over))
    assert any(p["field"] == field and words in p["message"] for p in found), found


def test_templated_params_are_not_judged_before_rendering() -> None:
    """A template in a typed param (priority: integer) is accepted; its value is only known later."""
    validate_rule(rule(params={"title": "t", "priority": "{{ data.value | int }}"}), CATALOG, SCHEMAS)


def test_unknown_pool_is_accepted_with_a_warning() -> None:
    """When a pool has published no catalogue yet, the rule is accepted with a warning."""
    got = validate_rule(rule(target={"kind": "action", "name": "x", "pool": "later"}), CATALOG, SCHEMAS)
    assert got.warnings and "no catalogue" in got.warnings[0]


def test_unregistered_type_allows_any_field() -> None:
    """Field paths are only checked against a registered schema."""
    doc = rule(
        match={"all": [{"field": "type", "equals": "other"}, {"field": "data.whatever", "exists": True}]}
    )
    validate_rule(doc, CATALOG, SCHEMAS)


def test_schema_allows_is_conservative() -> None:
    """Only paths a schema certainly cannot contain are refused."""
    schema = SCHEMAS["alert.fired"].data["versions"][0]["schema"]
    assert schema_allows(schema, ["labels", "instance"])
    assert schema_allows(schema, ["alerts", 0, "anything"])
    assert not schema_allows(schema, ["value", "x"])
    assert not schema_allows(schema, ["labels", 0])
    assert schema_allows({"$ref": "#/x"}, ["a"])
    assert schema_allows({"anyOf": [{"type": "string"}, {"type": "object"}]}, ["a"])


def test_durations() -> None:
    """Durations read as seconds."""
    assert parse_duration("250ms") == 0.25
    assert parse_duration("10m") == 600
    assert parse_duration(5) == 5
    with pytest.raises(ValueError):
        parse_duration("-1s")


def test_loading_a_directory_reports_bad_files_and_loads_the_rest(tmp_path: Path) -> None:
    """One bad file (or rule) does not stop the others; no rule is half-loaded."""
    (tmp_path / "good.yaml").write_text(
        "id: a\nmatch: {field: type, equals: x}\ntarget: {kind: action, name: create_ticket, pool: ops}\n"
        "params: {title: hi}\n"
    )
    (tmp_path / "many.yml").write_text(
        "rules:\n"
        "  - {id: b, match: {field: type, equals: y}, target: {kind: workflow, name: w, pool: newpool}}\n"
        "  - {id: c, match: {field: type, regex: '('}, target: {kind: action, name: create_ticket, pool: ops}}\n"
    )
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    (tmp_path / "dup.yaml").write_text(
        "id: a\nmatch: {field: type, equals: z}\ntarget: {kind: action, name: create_ticket, pool: ops}\n"
        "params: {title: hi}\n"
    )
    report = load_rules_dir(tmp_path, CATALOG, SCHEMAS)
    assert sorted(report.rules) == ["a", "b"]
    reasons = " | ".join(f"{w}: {m}" for w, m in report.problems)
    assert "broken.yaml: cannot read" in reasons
    assert "many.yml#1" in reasons and "invalid regular expression" in reasons
    assert "duplicate rule id 'a'" in reasons
    assert report.warnings and "newpool" in report.warnings[0][1]
