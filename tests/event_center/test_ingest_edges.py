"""POST /events with hostile input: every bad event is a 4xx naming the field, nothing half-written."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from whale_event_center.ingest import header_text

from whale import topics
from whale.errors import MessageTooLarge

from .fakes import Harness
from .test_ingest_api import BATCH, STRUCTURED, event, post

BINARY = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "urn:test:alerts/x", "ce-type": "test.any"}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def raw_nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def register_any(harness: Harness, schema: Any) -> None:
    response = harness.client.put("/schemas/test.any", json=schema)
    assert response.status_code in (200, 201), response.text


def _field(response: Any) -> str:
    body = response.json()
    return str(body["problems"][0]["field"]) if body.get("problems") else str(body.get("field"))


@pytest.mark.parametrize("depth", [65, 300, 5_000])
def test_deep_data_is_400_naming_data(harness: Harness, depth: int) -> None:
    doc = json.dumps(event(data={"host": "h", "value": 1})).replace(
        '"value": 1', f'"value": 1, "x": {raw_nested(depth)}'
    )
    response = post(harness, doc.encode())
    assert response.status_code == 400, response.text
    assert _field(response) == "data"


def test_deep_data_in_binary_mode_is_400(harness: Harness) -> None:
    response = post(harness, raw_nested(5_000).encode(), "application/json", **BINARY)
    assert response.status_code == 400 and _field(response) == "data"


def test_data_at_the_depth_limit_is_accepted(harness: Harness) -> None:
    register_any(harness, {})
    response = post(harness, event(type="test.any", data=nested(64)))
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"data": {"host": "\ud800", "value": 1}}, "data"),
        ({"id": "x\ud800"}, "id"),
        ({"subject": "\ud800"}, "subject"),
        ({"ext": "\udc00"}, "ext"),
    ],
)
def test_unpaired_surrogates_are_400_naming_the_field(
    harness: Harness, changes: dict[str, Any], field: str
) -> None:
    response = post(harness, json.dumps(event(**changes)).encode())
    assert response.status_code == 400, response.text
    assert _field(response) == field


@pytest.mark.parametrize(
    ("attr", "value"), [("source", "urn:test:alerts/a\x01"), ("subject", "a\nb"), ("ext", "a\x7f")]
)
def test_control_characters_are_400(harness: Harness, attr: str, value: str) -> None:
    response = post(harness, event(**{attr: value}))
    assert response.status_code == 400 and _field(response) == attr


def test_source_must_be_a_uri_reference(harness: Harness) -> None:
    response = post(harness, event(source="urn:test:alerts/a|b<c>"))
    assert response.status_code == 400 and _field(response) == "source"


def test_batch_good_bad_good_writes_nothing(harness: Harness) -> None:
    before = len(harness.producer.records)
    body = json.dumps([event(id="g1"), event(id="b", subject="\ud800"), event(id="g2")]).encode()
    response = post(harness, body, BATCH)
    assert response.status_code == 400
    assert [r["status"] for r in response.json()["results"]] == [424, 400, 424]
    assert len(harness.producer.records) == before


def test_empty_batch_is_accepted(harness: Harness) -> None:
    response = post(harness, [], BATCH)
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "rejected": 0, "results": []}


@pytest.mark.parametrize(
    "body", [[{**event(id="a")}, "not an event"], [event(id="a"), event(id="b", specversion="0.3")]]
)
def test_batch_with_non_objects_or_mixed_specversions_is_refused_whole(
    harness: Harness, body: list[Any]
) -> None:
    before = len(harness.producer.records)
    response = post(harness, body, BATCH)
    assert response.status_code == 400 and "whole batch" in response.json()["message"]
    assert len(harness.producer.records) == before


@pytest.mark.parametrize(
    "time",
    ["2018-04-05T18:31Z", "2018-04-05T17:31:00,123Z", "2018-04-05T17:31:00+0530", "1522949460", 1522949460],
)
def test_malformed_times_are_400(harness: Harness, time: Any) -> None:
    response = post(harness, event(time=time))
    assert response.status_code == 400 and _field(response) == "time"


def test_time_text_and_leap_seconds_are_kept(harness: Harness) -> None:
    for text, kept in (
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999999Z"),
        ("2018-04-05T17:31:00.123456789+05:30", "2018-04-05T17:31:00.123456789+05:30"),
    ):
        assert post(harness, event(id=text, time=text)).status_code == 202
        message = harness.producer.records[-1][1]
        assert message.header("ce_time") == kept.encode()


def test_long_extension_names_are_accepted_with_a_warning(harness: Harness) -> None:
    response = post(harness, event(averyveryverylongextensionname="v"))
    assert response.status_code == 202
    assert response.json()["warnings"][0]["field"] == "averyveryverylongextensionname"


def test_integer_extensions_beyond_32_bits_are_400(harness: Harness) -> None:
    response = post(harness, event(big=2**31))
    assert response.status_code == 400 and _field(response) == "big"


def test_binary_mode_headers_in_raw_utf8_are_read_as_utf8(harness: Harness) -> None:
    assert header_text("caf\u00c3\u00a9") == "café"  # what a server hands over for raw UTF-8 bytes
    assert header_text("caf%C3%A9") == "café"
    assert header_text("\u00e9") == "\u00e9"  # a Latin-1 byte that is not UTF-8 stays itself


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream"])
def test_non_json_binary_data_is_accepted_when_the_schema_allows_it(
    harness: Harness, content_type: str
) -> None:
    register_any(harness, {})
    body = b"\x00\x01 not json <x/>"
    response = post(harness, body, content_type, **BINARY)
    assert response.status_code == 202, response.text
    message = harness.producer.records[-1][1]
    assert message.value == body and message.header("content-type") == content_type.encode()


def test_non_json_data_base64_round_trips(harness: Harness) -> None:
    register_any(harness, {})
    payload = b"\xff\xfebinary"
    doc = event(type="test.any", data=None, data_base64=base64.b64encode(payload).decode())
    assert post(harness, doc).status_code == 202
    assert harness.producer.events(topics.INGEST)[-1].data == payload


def test_a_json_schema_refuses_non_json_unless_it_declares_the_media_type(harness: Harness) -> None:
    register_any(harness, {"type": "object"})
    refused = post(harness, b"hello", "text/plain", **BINARY)
    assert refused.status_code == 400 and _field(refused) == "datacontenttype"
    register_any(harness, {"type": "object", "contentMediaType": "text/*"})
    assert post(harness, b"hello", "text/plain; charset=utf-8", **BINARY).status_code == 202
    assert post(harness, event(type="test.any", id="j", data={"a": 1})).status_code == 202


def test_kafka_size_limit_is_413_never_503(harness: Harness) -> None:
    async def too_large(topic: str, message: Any) -> Any:
        raise MessageTooLarge("the record would be about 1000100 bytes", limit=1_000_000)

    harness.producer.send_message = too_large  # type: ignore[method-assign]
    response = post(harness, event())
    assert response.status_code == 413 and "retry-after" not in response.headers


def test_structured_mode_keeps_working_after_hostile_events(harness: Harness) -> None:
    post(harness, json.dumps(event(id="s", subject="\ud800")).encode(), STRUCTURED)
    post(harness, event(id="d", data=nested(300)))
    assert post(harness, event(id="fine")).status_code == 202


def test_secret_looking_data_keys_are_redacted_at_ingest(harness: Harness) -> None:
    response = post(harness, event(data={"host": "db1", "value": 1, "password": "hunter2"}))
    assert response.status_code == 202, response.text
    written = harness.producer.events(topics.INGEST)[-1]
    assert written.data == {"host": "db1", "value": 1, "password": "***"}
    assert written.extensions["redacted"] == "/password"
    assert b"hunter2" not in (harness.producer.records[-1][1].value or b"")


def test_a_large_batch_with_a_surrogate_member_is_400_not_500(harness: Harness) -> None:
    filler = event(id="big", data={"host": "x" * 600_000, "value": 1})
    body = json.dumps([filler, event(id="s", subject="\ud800"), {**filler, "id": "big2"}]).encode()
    response = post(harness, body, BATCH)
    assert response.status_code == 400, response.text
    assert [r["status"] for r in response.json()["results"]] == [424, 400, 424]


@pytest.mark.parametrize("extension", [{"\ud800": {"a": 1}}, {"\ud800": 2**40}, {"\ud800x": "v"}])
def test_extension_names_with_surrogates_are_400_not_500(harness: Harness, extension: dict[str, Any]) -> None:
    response = post(harness, json.dumps(event(**extension)).encode())
    assert response.status_code == 400, response.text
