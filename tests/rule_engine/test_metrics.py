"""The rule engine's metric children are looked up once and count on the family's samples."""

from __future__ import annotations

from whale_rule_engine import metrics


def test_a_cached_child_is_the_family_child_and_its_increments_show_in_the_family() -> None:
    child = metrics.child(metrics.REQUESTED, "test-metrics-rule")
    assert child is metrics.child(metrics.REQUESTED, "test-metrics-rule")
    assert child is metrics.REQUESTED.labels(rule="test-metrics-rule")
    before = child._value.get()
    child.inc()
    assert metrics.REQUESTED.labels(rule="test-metrics-rule")._value.get() == before + 1
