"""The CloudEvent model: strict CloudEvents 1.0 validation with precise problems."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from whale.cloudevent import CloudEvent, validate_event
from whale.errors import EventError


def _fields(exc: EventError) -> set[str]:
    return {p["field"] for p in exc.problems}


def test_create_fills_id_time_and_json_content_type() -> None:
    event = CloudEvent.create(type="t.x", source="/s", data={"a": 1}, subject="h1", region="eu")
    assert event.id and event.time is not None and event.time.tzinfo is not None
    assert event.datacontenttype == "application/json"
    assert event.extensions == {"region": "eu"}
    assert event.subject == "h1"


@pytest.mark.parametrize("missing", ["id", "source", "type"])
def test_missing_required_attribute_is_named(missing: str) -> None:
    doc = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    del doc[missing]
    with pytest.raises(EventError) as err:
        CloudEvent.from_structured(doc)
    assert missing in _fields(err.value)


def test_structured_form_requires_specversion() -> None:
    with pytest.raises(EventError) as err:
        CloudEvent.from_structured({"id": "1", "source": "/s", "type": "t"})
    assert "specversion" in _fields(err.value)


def test_wrong_specversion_is_refused() -> None:
    with pytest.raises(EventError, match="specversion"):
        CloudEvent.from_structured({"specversion": "0.3", "id": "1", "source": "/s", "type": "t"})


def test_empty_id_and_non_string_type_are_refused() -> None:
    with pytest.raises(EventError) as err:
        validate_event({"specversion": "1.0", "id": "", "source": "/s", "type": "t"})
    assert "id" in _fields(err.value)
    with pytest.raises(EventError) as err2:
        validate_event({"specversion": "1.0", "id": "1", "source": "/s", "type": 5})
    assert "type" in _fields(err2.value)


@pytest.mark.parametrize("name", ["Upper", "with_underscore", "a-b"])
def test_bad_extension_names_are_refused(name: str) -> None:
    with pytest.raises(EventError) as err:
        CloudEvent.from_structured({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", name: "v"})
    assert err.value.problems


def test_extension_values_must_be_scalars() -> None:
    with pytest.raises(EventError) as err:
        CloudEvent.from_structured(
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "ext": {"a": 1}}
        )
    assert "ext" in _fields(err.value)


def test_time_must_carry_an_offset_and_dataschema_must_be_absolute() -> None:
    with pytest.raises(EventError) as err:
        CloudEvent.from_structured(
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": "2026-01-01T00:00:00"}
        )
    assert "time" in _fields(err.value)
    with pytest.raises(EventError) as err2:
        CloudEvent.from_structured(
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "dataschema": "relative/path"}
        )
    assert "dataschema" in _fields(err2.value)


def test_source_with_white_space_is_not_a_uri_reference() -> None:
    with pytest.raises(EventError, match="source"):
        CloudEvent.from_structured({"specversion": "1.0", "id": "1", "source": "a b", "type": "t"})


def test_structured_round_trip_keeps_every_attribute() -> None:
    doc = {
        "specversion": "1.0",
        "id": "42",
        "source": "urn:whale:test",
        "type": "t.x",
        "subject": "host-1",
        "time": "2026-11-23T10:00:00Z",
        "datacontenttype": "application/json",
        "dataschema": "http://127.0.0.1:8080/schemas/t.x/versions/1",
        "correlationid": "c1",
        "attempt": 3,
        "urgent": True,
        "data": {"k": [1, 2]},
    }
    event = CloudEvent.from_structured(doc)
    assert event.time == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert event.to_structured() == doc


def test_binary_data_uses_data_base64() -> None:
    event = CloudEvent.create(
        type="t", source="/s", data=b"\x00\x01", datacontenttype="application/octet-stream"
    )
    doc = event.to_structured()
    assert doc["data_base64"] == "AAE=" and "data" not in doc
    assert CloudEvent.from_structured(doc).data == b"\x00\x01"


def test_partition_key_prefers_extension_then_subject() -> None:
    assert CloudEvent.create(type="t", source="/s", subject="a", partitionkey="k").partition_key == "k"
    assert CloudEvent.create(type="t", source="/s", subject="a").partition_key == "a"
    assert CloudEvent.create(type="t", source="/s").partition_key is None
