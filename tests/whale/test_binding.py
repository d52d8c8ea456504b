"""The Kafka protocol binding, checked against the official cloudevents SDK's conversion."""

from __future__ import annotations

import json

import pytest
from cloudevents.v1.http import CloudEvent as SdkEvent
from cloudevents.v1.kafka import KafkaMessage as SdkMessage
from cloudevents.v1.kafka import from_binary as sdk_from_binary
from cloudevents.v1.kafka import to_binary as sdk_to_binary
from cloudevents.v1.kafka import to_structured as sdk_to_structured

from whale.binding import KafkaMessage, from_kafka, to_binary, to_structured
from whale.cloudevent import CloudEvent
from whale.errors import BindingError


def _event(**extra: object) -> CloudEvent:
    return CloudEvent.from_structured(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "urn:test",
            "type": "whale.test",
            "subject": "host-9",
            "time": "2026-11-23T10:00:00Z",
            "datacontenttype": "application/json",
            "dataschema": "http://x/schemas/whale.test/1",
            "correlationid": "c-1",
            "data": {"usage": 91.5, "labels": {"instance": "host-9"}},
            **extra,
        }
    )


def test_binary_mode_writes_ce_headers_content_type_and_data_value() -> None:
    msg = to_binary(_event())
    headers = dict(msg.headers)
    assert headers["ce_id"] == b"e-1" and headers["ce_type"] == b"whale.test"
    assert headers["ce_specversion"] == b"1.0" and headers["ce_correlationid"] == b"c-1"
    assert headers["content-type"] == b"application/json"
    assert json.loads(msg.value or b"") == {"usage": 91.5, "labels": {"instance": "host-9"}}


def test_key_is_partitionkey_then_subject_then_none() -> None:
    assert to_binary(_event(partitionkey="pk")).key == b"pk"
    assert to_binary(_event()).key == b"host-9"
    assert to_binary(CloudEvent.create(type="t", source="/s")).key is None
    assert to_binary(_event(), key="explicit").key == b"explicit"


def test_binary_round_trip_keeps_every_attribute_and_extension() -> None:
    event = _event(partitionkey="pk", attempt=2, urgent=True)
    back = from_kafka(to_binary(event))
    assert back.to_structured() | {"attempt": 2, "urgent": True} == event.to_structured()
    assert back.extensions["attempt"] == "2"  # Kafka headers carry strings


def test_official_sdk_reads_what_whale_writes() -> None:
    msg = to_binary(_event())
    sdk = sdk_from_binary(SdkMessage(dict(msg.headers), msg.key, msg.value or b""))
    assert sdk["id"] == "e-1" and sdk["type"] == "whale.test" and sdk["subject"] == "host-9"
    assert sdk["correlationid"] == "c-1" and sdk["time"] == "2026-11-23T10:00:00Z"
    assert sdk.data == {"usage": 91.5, "labels": {"instance": "host-9"}}


def test_whale_reads_what_the_official_sdk_writes_in_both_modes() -> None:
    attrs = {"id": "s-1", "source": "urn:sdk", "type": "sdk.t", "subject": "x", "correlationid": "c"}
    sdk_event = SdkEvent.create({**attrs, "datacontenttype": "application/json"}, {"a": 1})
    binary = sdk_to_binary(sdk_event)
    structured = sdk_to_structured(sdk_event)
    for sdk_msg in (binary, structured):
        assert not isinstance(sdk_msg.key, str) and isinstance(sdk_msg.value, bytes)  # the SDK writes bytes
        ours = from_kafka(KafkaMessage(sdk_msg.key, sdk_msg.value, tuple(sdk_msg.headers.items())))
        assert (ours.id, ours.source, ours.type, ours.subject) == ("s-1", "urn:sdk", "sdk.t", "x")
        assert ours.extensions["correlationid"] == "c"
        assert ours.data == {"a": 1}


def test_structured_mode_round_trip() -> None:
    event = _event()
    assert from_kafka(to_structured(event)).to_structured() == event.to_structured()


def test_non_json_data_stays_bytes() -> None:
    event = CloudEvent.create(
        type="t", source="/s", data=b"\xff\x00", datacontenttype="application/octet-stream"
    )
    assert from_kafka(to_binary(event)).data == b"\xff\x00"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (KafkaMessage(None, b"hello", ()), "no ce_specversion"),
        (
            KafkaMessage(None, b"{not json", (("content-type", b"application/cloudevents+json"),)),
            "not valid JSON",
        ),
        (
            KafkaMessage(
                None,
                b"{bad",
                (
                    ("ce_specversion", b"1.0"),
                    ("ce_id", b"1"),
                    ("ce_source", b"/s"),
                    ("ce_type", b"t"),
                    ("content-type", b"application/json"),
                ),
            ),
            "not valid JSON",
        ),
        (
            KafkaMessage(None, b"{}", (("ce_specversion", b"1.0"), ("ce_source", b"/s"), ("ce_type", b"t"))),
            "id",
        ),
        (
            KafkaMessage(None, b"", (("ce_specversion", b"1.0"), ("ce_id", b"\xff"), ("ce_source", b"/s"))),
            "UTF-8",
        ),
    ],
)
def test_poison_messages_raise_binding_error_with_reason(message: KafkaMessage, reason: str) -> None:
    with pytest.raises(BindingError, match=reason):
        from_kafka(message)
