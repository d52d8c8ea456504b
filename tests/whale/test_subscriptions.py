"""Push subscriptions (whale.subscriptions): YAML validation with precise errors, record round trip."""

from __future__ import annotations

from typing import Any

import pytest

from whale.subscriptions import RECORD_TYPE, SubscriptionError, from_record, parse_subscriptions

SUB = {
    "id": "ops-pager",
    "endpoint": "http://127.0.0.1:9/hook",
    "filter": {
        "all": [
            {"field": "type", "prefix": "prometheus.alert."},
            {"field": "data.labels.severity", "equals": "critical"},
        ]
    },
}


def test_a_valid_subscription_round_trips_through_its_record() -> None:
    [sub] = parse_subscriptions({"subscriptions": [SUB]})
    record = sub.to_record()
    assert record.type == RECORD_TYPE and record.subject == "ops-pager"
    assert from_record(record) == sub
    assert sub.topics == ["whale.events"] and sub.paused is False


def test_the_filter_uses_the_rules_matching_language() -> None:
    [sub] = parse_subscriptions({"subscriptions": [SUB]})
    condition = sub.condition()
    assert condition is not None
    assert condition.evaluate(
        {"type": "prometheus.alert.firing", "data": {"labels": {"severity": "critical"}}}
    )
    assert not condition.evaluate(
        {"type": "prometheus.alert.firing", "data": {"labels": {"severity": "info"}}}
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "Bad Id"}, "subscriptions.0.id"),
        ({"endpoint": "ftp://x"}, "subscriptions.0.endpoint"),
        ({"max_attempts": 0}, "subscriptions.0.max_attempts"),
        ({"filter": {"field": "data.x", "bigger": 3}}, "subscriptions.0"),
        ({"colour": "red"}, "subscriptions.0.colour"),
    ],
)
def test_bad_subscriptions_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SubscriptionError) as info:
        parse_subscriptions({"subscriptions": [{**SUB, **change}]})
    assert info.value.field == field


def test_a_filter_error_says_where_in_the_filter() -> None:
    with pytest.raises(SubscriptionError, match=r"filter"):
        parse_subscriptions(
            {"subscriptions": [{**SUB, "filter": {"all": [{"field": "x", "greater": "abc"}]}}]}
        )


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(SubscriptionError, match="duplicate"):
        parse_subscriptions({"subscriptions": [SUB, SUB]})
