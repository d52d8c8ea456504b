"""Edge rules of the CloudEvent model: no event may break another reader or an outside SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from whale.cloudevent import CloudEvent, edge_problems, warnings
from whale.errors import EventError
from whale.event_data import MAX_DEPTH, MAX_NESTING, data_problem, depth_within


def _event(**changes: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", **changes}


def _refused(doc: dict[str, Any]) -> set[str]:
    with pytest.raises(EventError) as err:
        CloudEvent.from_structured(doc)
    return {p["field"] for p in err.value.problems}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_data_nested_to_the_limit_is_accepted_and_one_level_more_refused() -> None:
    assert CloudEvent.from_structured(_event(data=nested(MAX_NESTING))).data == nested(MAX_NESTING)
    assert _refused(_event(data=nested(MAX_NESTING + 1))) == {"data"}


def test_a_senders_data_may_nest_less_than_whales_own_wrappers() -> None:
    assert edge_problems(CloudEvent.from_structured(_event(data=nested(MAX_DEPTH)))) == []
    deeper = CloudEvent.from_structured(_event(data=nested(MAX_DEPTH + 1)))
    assert [p["field"] for p in edge_problems(deeper)] == ["data"]


def test_very_deep_data_is_measured_without_recursion() -> None:
    deep: Any = []
    for _ in range(20_000):
        deep = [deep]
    problem = data_problem(deep)
    assert problem is not None and "deeper than" in problem[1]
    assert not depth_within(deep, 100)
    assert depth_within(nested(3), 3) and not depth_within(nested(3), 2)


@pytest.mark.parametrize(
    "changes",
    [
        {"data": {"a": "\ud800"}},
        {"data": {"\udc00": 1}},
        {"id": "x\ud800"},
        {"subject": "\udfff"},
        {"ext": "\ud800"},
        {"source": "/s\ud800"},
        {"type": "t\ud800"},
    ],
)
def test_unpaired_surrogates_are_refused_naming_the_field(changes: dict[str, Any]) -> None:
    fields = _refused(_event(**changes))
    assert fields == {next(iter(changes))}


def test_surrogate_problem_points_into_data() -> None:
    assert data_problem({"a": [0, "\ud800"]}) == (
        "/a/1",
        "string is not valid Unicode (it holds an unpaired surrogate)",
    )


@pytest.mark.parametrize("char", ["\x01", "\n", "\x7f"])
@pytest.mark.parametrize("attr", ["source", "subject", "ext", "id"])
def test_control_characters_are_refused(attr: str, char: str) -> None:
    assert _refused(_event(**{attr: f"/a{char}b"})) == {attr}


@pytest.mark.parametrize("source", ["/a|b<c>", "/a b", "/a%zz", "/a\\b", "/a{b}", "/a^b", "/a`b", '/a"b'])
def test_source_must_be_a_uri_reference(source: str) -> None:
    assert _refused(_event(source=source)) == {"source"}


@pytest.mark.parametrize(
    "source", ["/a/b", "urn:whale:x", "https://h.example/p?q=1#f", "/caf%C3%A9", "/café"]
)
def test_uri_references_are_accepted(source: str) -> None:
    assert CloudEvent.from_structured(_event(source=source)).source == source


@pytest.mark.parametrize(
    "text",
    [
        "2018-04-05T18:31Z",
        "2018-04-05T17:31:00,123Z",
        "2018-04-05T17:31:00+0530",
        "1522949460",
        "2018-04-05 17:31:00Z",
        "2018-04-05T17:31:00",
        "2018-02-30T17:31:00Z",
        "2018-04-05T17:31:00+24:00",
    ],
)
def test_time_must_be_strict_rfc3339(text: str) -> None:
    assert _refused(_event(time=text)) == {"time"}


def test_a_number_is_not_a_time() -> None:
    assert _refused(_event(time=1522949460)) == {"time"}


@pytest.mark.parametrize(
    "text",
    [
        "2018-04-05T17:31:00.123456789+05:30",
        "2018-04-05T17:31:00-00:00",
        "2018-04-05T17:31:00.5Z",
    ],
)
def test_time_keeps_the_senders_text(text: str) -> None:
    event = CloudEvent.from_structured(_event(time=text))
    assert event.to_structured()["time"] == text
    assert event.time is not None and event.time.tzinfo is not None


def test_leap_second_is_accepted_and_written_as_the_end_of_its_minute() -> None:
    event = CloudEvent.from_structured(_event(time="2016-12-31T23:59:60Z"))
    assert event.time == datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert event.to_structured()["time"] == "2016-12-31T23:59:59.999999999Z"
    offset = CloudEvent.from_structured(_event(time="2016-12-31T18:59:60.5-05:00"))
    assert offset.to_structured()["time"] == "2016-12-31T18:59:59.999999999-05:00"


def test_lower_case_t_and_z_are_written_upper_case() -> None:
    event = CloudEvent.from_structured(_event(time="2018-04-05t17:31:00.25z"))
    assert event.to_structured()["time"] == "2018-04-05T17:31:00.25Z"


def test_long_extension_names_are_accepted_with_a_warning() -> None:
    event = CloudEvent.from_structured(_event(averyveryverylongextensionname="v"))
    assert event.extensions == {"averyveryverylongextensionname": "v"}
    assert [w["field"] for w in warnings(event)] == ["averyveryverylongextensionname"]


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**63])
def test_integer_extensions_beyond_32_bits_are_refused(value: int) -> None:
    assert _refused(_event(big=value)) == {"big"}


def test_32_bit_integer_extensions_are_accepted() -> None:
    assert CloudEvent.from_structured(_event(n=2**31 - 1, m=-(2**31))).extensions == {
        "n": 2**31 - 1,
        "m": -(2**31),
    }


def test_create_drops_an_empty_subject() -> None:
    assert CloudEvent.create(type="t", source="/s", subject="").subject is None


@pytest.mark.parametrize("depth", [300, 5_000])
def test_an_old_over_deep_event_on_kafka_is_a_poison_message_not_a_crash(depth: int) -> None:
    from whale.binding import KafkaMessage, from_kafka
    from whale.errors import BindingError

    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("content-type", b"application/json"),
    )
    value = ('{"a":' * depth + "1" + "}" * depth).encode()
    with pytest.raises(BindingError) as err:
        from_kafka(KafkaMessage(None, value, headers))
    assert err.value.problems[0]["field"] == "data"


def test_an_empty_subject_header_from_older_versions_is_read_as_no_subject() -> None:
    from whale.binding import KafkaMessage, from_kafka

    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_subject", b""),
    )
    assert from_kafka(KafkaMessage(None, None, headers)).subject is None
