"""Metric families belong to the process that takes them; sender-given label values are bounded."""

from __future__ import annotations

import json
import uuid

from prometheus_client import REGISTRY

from whale.metrics import CONSUMER, OTHER, BoundedLabel, Families, lag_reporter, process_registry


def names(registry: object) -> set[str]:
    return {family.name for family in registry.collect()}  # type: ignore[attr-defined]


def test_families_are_registered_only_in_the_registry_of_the_process_that_takes_them() -> None:
    mine, theirs = Families("mine"), Families("theirs")
    mine.counter("whale_test_mine_total", "mine", ["outcome"]).labels(outcome="ok").inc()
    theirs.gauge("whale_test_theirs", "theirs").set(1)
    registry = process_registry(mine)
    assert "whale_test_mine" in names(registry)
    assert "whale_test_theirs" not in names(registry)
    assert not {"whale_test_mine", "whale_test_theirs"} & names(REGISTRY)
    assert registry.get_sample_value("whale_test_mine_total", {"outcome": "ok"}) == 1
    assert "process_cpu_seconds" in names(registry)  # the process's own resource metrics are there


def test_a_bounded_label_keeps_known_values_up_to_the_cap_and_counts_the_rest_as_other() -> None:
    label = BoundedLabel(lambda value: value.startswith("known."), cap=2)
    assert [label("known.a"), label("made.up"), label("known.b"), label("known.c"), label("known.a")] == [
        "known.a",
        OTHER,
        "known.b",
        OTHER,
        "known.a",
    ]
    assert {label(uuid.uuid4().hex) for _ in range(1000)} == {OTHER}


def test_the_consumers_lag_is_summed_per_topic_from_librdkafkas_statistics_and_unknown_lag_left_out() -> None:
    report = lag_reporter("g-lag-test")
    partitions = {"0": {"consumer_lag": 3}, "1": {"consumer_lag": 4}, "-1": {"consumer_lag": -1}}
    report(json.dumps({"topics": {"whale.events": {"partitions": partitions}}}))
    registry = process_registry(CONSUMER)
    assert (
        registry.get_sample_value(
            "whale_consumer_lag_messages", {"group": "g-lag-test", "topic": "whale.events"}
        )
        == 7
    )
    report("not json")  # statistics are advisory: nothing raised, nothing changed
    report(json.dumps({"topics": []}))
    assert (
        registry.get_sample_value(
            "whale_consumer_lag_messages", {"group": "g-lag-test", "topic": "whale.events"}
        )
        == 7
    )
