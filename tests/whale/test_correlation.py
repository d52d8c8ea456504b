"""Causation and correlation links for events emitted in reaction to others."""

from __future__ import annotations

from whale.cloudevent import CloudEvent
from whale.correlation import caused_by, correlation_id


def test_a_reaction_links_to_its_cause_and_to_the_first_event_of_the_chain() -> None:
    first = CloudEvent.create(type="a", source="/s", traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    second = caused_by(first, type="b", source="/r")
    third = caused_by(second, type="c", source="/e", data={"x": 1})
    assert correlation_id(first) == first.id
    assert second.extensions["causationid"] == first.id
    assert third.extensions["causationid"] == second.id
    assert third.extensions["correlationid"] == first.id
    assert third.extensions["traceparent"] == first.extensions["traceparent"]
