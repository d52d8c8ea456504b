"""Indexed documents (idempotent ids, DLQ copies) and search/trace helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from whale_event_center.errors import InvalidEvent
from whale_event_center.search import EventQuery, causal_order, decode_cursor, encode_cursor

from whale import topics
from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent
from whale.correlation import caused_by
from whale.dead_letter import dlq_message
from whale.es.documents import document, event_doc_id
from whale.es.store import template


def test_event_document_id_depends_only_on_source_and_id() -> None:
    event = CloudEvent.create(type="t", source="urn:s", data={"a": {"b": "needle"}}, correlationid="c1")
    one = document(to_binary(event), topic=topics.EVENTS, partition=0, offset=1, timestamp_ms=1)
    two = document(to_binary(event), topic=topics.EVENTS, partition=2, offset=9, timestamp_ms=5)
    assert one.doc_id == two.doc_id == event_doc_id("urn:s", event.id)
    assert one.body["correlationid"] == "c1" and "needle" in one.body["data_text"]
    assert json.loads(one.body["raw"])["data"] == {"a": {"b": "needle"}}


def test_dead_letters_and_unreadable_messages_are_indexed_with_headers() -> None:
    poison = KafkaMessage(b"k", b"\x00garbage", (("x-origin", b"test"),))
    dead = dlq_message(poison, reason="unreadable", topic="whale.events", partition=1, offset=7, group="g")
    doc = document(dead, topic=topics.DLQ, partition=0, offset=3, timestamp_ms=1000)
    assert doc.body["kind"] == "dlq" and doc.body["dlq"]["offset"] == 7
    assert doc.body["headers"]["x-origin"] == "test"
    unreadable = document(poison, topic=topics.RESULTS, partition=0, offset=3, timestamp_ms=1000)
    assert unreadable.body["kind"] == "unreadable"


def test_a_dead_letter_id_is_the_same_for_a_retry_and_new_for_another_message_at_that_origin() -> None:
    def letter(event: CloudEvent, *, group: str = "g", reason: str = "boom") -> str:
        dead = dlq_message(
            to_binary(event), reason=reason, topic="whale.events", partition=0, offset=11, group=group
        )
        return document(dead, topic=topics.DLQ, partition=0, offset=5, timestamp_ms=1000).doc_id

    first = CloudEvent.create(type="t", source="s", data={"n": 1})
    assert letter(first) == letter(first, reason="boom again")  # the same consumer giving up again
    assert letter(first) != letter(first, group="other")  # another group gave up on it too
    # the topic recreated: offset 11 now holds another event; its letter must not replace (nor
    # inherit the redrive of) the letter of the event that was there before
    assert letter(first) != letter(CloudEvent.create(type="t", source="s", data={"n": 1}))


def test_non_object_data_is_wrapped_for_the_flattened_field() -> None:
    event = CloudEvent.create(type="t", source="s", data=[1, 2])
    assert document(to_binary(event), topic="x", partition=0, offset=0, timestamp_ms=None).body["data"] == {
        "value": [1, 2]
    }


def test_template_maps_data_as_flattened_and_raw_unindexed() -> None:
    props = template("whale-events")["template"]["mappings"]["properties"]
    assert props["data"]["type"] == "flattened" and props["raw"]["index"] is False


def test_query_filters_and_cursor_round_trip() -> None:
    cursor = encode_cursor([123, "abc"])
    query = EventQuery(type=["a"], extensions={"correlationid": "c"}, text="disk full", after=cursor).to_es()
    assert {"term": {"extensions.correlationid": "c"}} in query["query"]["bool"]["filter"]
    assert query["search_after"] == [123, "abc"]
    with pytest.raises(InvalidEvent):
        decode_cursor("garbage")


def _item(event: CloudEvent) -> dict[str, Any]:
    return {"event": event.to_structured()}


def test_trace_puts_each_cause_before_its_effects() -> None:
    root = CloudEvent.create(type="alert", source="s")
    action = caused_by(root, type="whale.action.requested", source="r")
    result = caused_by(action, type="whale.action.succeeded", source="x")
    other = caused_by(root, type="whale.rule.throttled", source="r")
    ordered = causal_order([_item(result), _item(other), _item(action), _item(root)])
    ids = [o["event"]["id"] for o in ordered]
    assert ids.index(root.id) < ids.index(action.id) < ids.index(result.id)
    assert ids.index(root.id) < ids.index(other.id)
    depth = {o["event"]["id"]: o["depth"] for o in ordered}
    assert depth[result.id] == 2 and ordered[0]["causationid"] is None
