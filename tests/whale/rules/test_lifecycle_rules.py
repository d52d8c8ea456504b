"""Rules on the alert lifecycle: ``on: firing|updated|resolved`` and ``changed: <value name>``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from whale.cloudevent import CloudEvent
from whale.rules.files import load_rules_dir
from whale.rules.model import RuleError, validate_rule
from whale.rules.paths import event_context

BASE: dict[str, Any] = {
    "id": "disk",
    "match": {"field": "type", "equals": "prometheus.alert.firing"},
    "target": {"kind": "workflow", "name": "disk.remediate"},
}


def event(state: str, **data: Any) -> dict[str, Any]:
    e = CloudEvent.create(
        type="prometheus.alert.firing", source="/am", data=data or {"x": 1}, extensions={"alertstate": state}
    )
    return event_context(e)


def test_on_limits_a_rule_to_the_given_lifecycle_steps() -> None:
    rule = validate_rule({**BASE, "on": ["firing", "updated"]})
    assert rule.condition.evaluate(event("firing")) and rule.condition.evaluate(event("updated"))
    only = validate_rule({**BASE, "on": "updated"})
    assert only.on == ["updated"]
    assert not only.condition.evaluate(event("firing")) and only.condition.evaluate(event("updated"))


@pytest.mark.parametrize("value", ["fired", ["firing", "closed"], [], 3])
def test_on_refuses_anything_but_lifecycle_steps_naming_the_field(value: Any) -> None:
    with pytest.raises(RuleError) as caught:
        validate_rule({**BASE, "on": value})
    assert caught.value.field == "on"
    assert "firing, updated or resolved" in str(caught.value)


def test_changed_matches_only_updates_where_that_value_changed() -> None:
    rule = validate_rule({**BASE, "changed": "annotations.description"})
    assert rule.condition.evaluate(event("updated", changed=["annotations.description"]))
    assert not rule.condition.evaluate(event("updated", changed=["labels.severity"]))
    assert not rule.condition.evaluate(event("firing"))
    with pytest.raises(RuleError) as caught:
        validate_rule({**BASE, "changed": "annotations..x"})
    assert caught.value.field == "changed"


def test_a_rule_file_with_on_loads_although_yaml_reads_the_key_as_true(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "id: disk\non: [resolved]\nmatch: {field: type, equals: prometheus.alert.resolved}\n"
        "target: {kind: action, name: note}\n"
    )
    report = load_rules_dir(tmp_path)
    assert not report.problems
    assert report.rules["disk"].on == ["resolved"]
    assert report.rules["disk"].document()["on"] == ["resolved"]
    assert "on" not in validate_rule(BASE).document()  # absent stays absent in the saved record
