"""Light decoding of CloudEvent records: the same events and the same refusals as from_kafka."""

from __future__ import annotations

import pytest

from whale.binding import KafkaMessage, from_kafka, to_binary, to_structured
from whale.cloudevent import CloudEvent
from whale.enrichment import ENRICHMENT, Enricher
from whale.errors import BindingError
from whale.light_event import LightEvent, decode, decode_model
from whale.rules.paths import event_context


def _event(**extra: object) -> CloudEvent:
    return CloudEvent.create(
        type="alert.fired",
        source="test/inbound",
        subject="web-1",
        data={"host": "web-1", "value": 99, "labels": {"a": "é"}},
        extensions={"correlationid": "c-1", "traceparent": "00-ab-cd-01"},
        **extra,
    )


def _binary(headers: dict[str, bytes], value: bytes | None) -> KafkaMessage:
    return KafkaMessage(None, value, tuple(headers.items()))


def _good_headers() -> dict[str, bytes]:
    return {
        "ce_specversion": b"1.0",
        "ce_id": b"e-1",
        "ce_source": b"test/inbound",
        "ce_type": b"alert.fired",
        "content-type": b"application/json",
    }


def test_a_binary_mode_event_reads_into_the_same_context_and_structured_form_as_the_model() -> None:
    event = _event()
    light = decode(to_binary(event))
    assert light._model is None  # the fast path built no model
    assert light.context() == event_context(event)
    assert light.to_structured() == event.to_structured()
    assert light.full().to_structured() == event.to_structured()


def test_a_structured_mode_event_is_read_by_the_binding_and_gives_the_same_light_form() -> None:
    event = _event()
    light = decode(to_structured(event))
    assert light.context() == event_context(event)


def test_a_light_event_round_trips_through_its_structured_form() -> None:
    event = CloudEvent.create(
        type="t", source="s", data=b"\x00\x01", datacontenttype="application/octet-stream"
    )
    light = decode(to_binary(event))
    assert LightEvent.from_structured(light.to_structured()).context() == event_context(event)


@pytest.mark.parametrize(
    ("change", "value", "reason"),
    [
        ({"ce_specversion": None}, b"{}", "not a CloudEvent"),
        ({"ce_specversion": b"0.3"}, b"{}", "specversion"),
        ({"ce_id": b""}, b"{}", "id"),
        ({"ce_source": None}, b"{}", "source"),
        ({"ce_time": b"yesterday"}, b"{}", "time"),
        ({"ce_subject": b"\xff"}, b"{}", "not UTF-8"),
        ({"ce_Bad-Name": b"x"}, b"{}", "bad-name"),
        ({}, b'{"host": "web-\\ud800"}', "data"),
        ({}, b'{"x": ' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}", "data"),
        ({}, b"{not json", "not valid JSON"),
    ],
)
def test_a_malformed_record_is_refused_with_the_reason_from_kafka_gives(
    change: dict[str, bytes | None], value: bytes, reason: str
) -> None:
    headers = _good_headers()
    for name, replaced in change.items():
        if replaced is None:
            del headers[name]
        else:
            headers[name] = replaced
    message = _binary(headers, value)
    with pytest.raises(BindingError) as light:
        decode(message)
    with pytest.raises(BindingError) as full:
        from_kafka(message)
    assert light.value.message == full.value.message
    assert reason in light.value.message


def test_values_orjson_reads_differently_take_the_binding_path() -> None:
    big = 123456789012345678901234567890
    light = decode(_binary(_good_headers(), b'{"n": %d, "f": 1.5}' % big))
    assert light.data == {"n": big, "f": 1.5}


def test_an_empty_subject_is_no_subject() -> None:
    headers = {**_good_headers(), "ce_subject": b""}
    assert decode(_binary(headers, b"{}")).subject is None


class _Hosts:
    name = "fake"
    place = "host"
    waits = False

    def lookup(self, hosts: list[str]) -> dict[str, str] | None:
        return {"name": hosts[0], "team": "web"} if hosts else None


def test_the_light_context_enriched_is_what_the_enricher_builds_from_the_model() -> None:
    enricher = Enricher([_Hosts()])
    event = _event()
    light = decode(to_binary(event))
    ctx = light.context()
    ctx[ENRICHMENT] = enricher.enrich(light)
    assert ctx == enricher.context(event)
    assert ctx[ENRICHMENT] == {"host": {"name": "web-1", "team": "web"}}


def test_the_model_decoded_light_equals_the_one_from_kafka_builds() -> None:
    for message in (
        to_binary(_event()),
        to_binary(_event(time="2026-01-02T03:04:05.123456789+01:00")),
        to_structured(_event()),
        _binary(_good_headers(), b'{"n": 123456789012345678901234567890}'),
        _binary({**_good_headers(), "ce_subject": b""}, None),
    ):
        light, full = decode_model(message), from_kafka(message)
        assert light == full
        assert light.to_structured() == full.to_structured()
        assert light.time_text() == full.time_text()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ce_source": b"has space"}, "source must be a URI-reference"),
        ({"ce_source": b"a\x01b"}, "control characters"),
        ({"ce_id": b"e\n1"}, "control characters"),
        ({"ce_type": b"t\x7f"}, "control characters"),
        ({"ce_subject": b"s\x00"}, "control characters"),
        ({"ce_traceid": b"x\ty"}, "control characters"),
    ],
)
def test_what_the_fast_path_leaves_to_the_edges_is_refused_by_decode_model_as_from_kafka_does(
    change: dict[str, bytes], reason: str
) -> None:
    message = _binary({**_good_headers(), **change}, b"{}")
    with pytest.raises(BindingError) as light:
        decode_model(message)
    with pytest.raises(BindingError) as full:
        from_kafka(message)
    assert light.value.message == full.value.message
    assert reason in light.value.message


def test_a_usual_binary_mode_record_is_decoded_without_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    message = to_binary(_event())
    expected = from_kafka(message)
    monkeypatch.setattr("whale.light_event.from_kafka", lambda m: pytest.fail("took the binding path"))
    assert decode_model(message) == expected
