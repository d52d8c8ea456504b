"""The one rule set of the rule engine, the to-do stage and `whale rules`: directory + topic, indexed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from whale.cloudevent import CloudEvent
from whale.rules.model import Rule, validate_rule
from whale.rules.paths import event_context
from whale.rules.ruleset import RuleSet

RULE = """
id: disk-full
match:
  all:
    - {field: type, equals: vm.disk.alert}
    - {field: data.value, greater: 85}
target: {kind: workflow, name: disk.cleanup}
"""


def rule(**over: Any) -> Rule:
    doc: dict[str, Any] = {
        "id": "disk",
        "version": 3,
        "match": {"field": "type", "equals": "alert.fired"},
        "target": {"kind": "action", "name": "ticket"},
    }
    doc.update(over)
    return validate_rule(doc)


def test_ruleset_applies_topic_records_live_over_directory_rules() -> None:
    """Topic records win over the directory; a tombstone falls back; invalid records are ignored."""
    rules = RuleSet()
    rules.set_directory_rules({"disk": rule()})
    ctx = {"type": "alert.fired", "data": {}}
    assert [r.version for r in rules.match(ctx)] == [3]
    newer = rule(version=4, match={"field": "type", "equals": "other"})
    rules.apply_record("disk", newer.to_event())
    assert rules.match(ctx) == [] and rules.match({"type": "other"})[0].version == 4
    rules.apply_record("disk", CloudEvent.create(type="whale.rule.saved", source="s", data={"id": "disk"}))
    assert rules.match({"type": "other"})[0].version == 4
    rules.apply_record("disk", None)
    assert [r.version for r in rules.match(ctx)] == [3]


def test_directory_rules_load_and_disabled_records_stop_matching(tmp_path: Path) -> None:
    """A directory's rules match; a record disabling the rule stops it, enabling it again restores it."""
    (tmp_path / "disk.yaml").write_text(RULE)
    rules = RuleSet()
    assert rules.load_directory(tmp_path).problems == []
    ctx = event_context(
        CloudEvent.create(type="vm.disk.alert", source="tests", subject="h", data={"value": 90})
    )
    assert [r.id for r in rules.match(ctx)] == ["disk-full"]
    doc = {**rules.all()[0].document(), "enabled": False}
    rules.apply_record("disk-full", CloudEvent.create(type="whale.rule.saved", source="t", data=doc))
    assert rules.match(ctx) == [] and [r.enabled for r in rules.all()] == [False]
    enabled = {**doc, "enabled": True}
    rules.apply_record("disk-full", CloudEvent.create(type="whale.rule.saved", source="t", data=enabled))
    assert [r.id for r in rules.match(ctx)] == ["disk-full"]


def test_a_record_under_another_key_is_ignored_and_the_size_is_reported() -> None:
    """A record whose rule id differs from its key is refused; ``on_size`` sees the enabled count."""
    sizes: list[int] = []
    rules = RuleSet(on_size=sizes.append)
    rules.set_directory_rules({"disk": rule(), "off": rule(id="off", enabled=False)})
    rules.apply_record("other", rule(id="elsewhere").to_event())
    assert [r.id for r in rules.all()] == ["disk", "off"]
    assert sizes == [1]


def test_a_topic_snapshot_replaces_every_topic_rule_at_once() -> None:
    """`whale rules` reads the topic once: the snapshot overrides the directory, as records do."""
    rules = RuleSet()
    rules.set_directory_rules({"disk": rule(), "cpu": rule(id="cpu")})
    rules.set_topic_rules({"disk": rule(version=4), "new": rule(id="new")})
    assert [(r.id, r.version) for r in rules.all()] == [("cpu", 3), ("disk", 4), ("new", 3)]
    rules.set_topic_rules({})
    assert [(r.id, r.version) for r in rules.all()] == [("cpu", 3), ("disk", 3)]
