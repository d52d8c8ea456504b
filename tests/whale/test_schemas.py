"""The one contract check every producer of user events shares (whale.schemas.SchemaCheck): the
type must be registered, ``dataschema`` selects a version, ``format`` is checked, problems name
the field and why, and a version is compiled once."""

from __future__ import annotations

from typing import Any

import pytest

from whale.cloudevent import CloudEvent
from whale.schemas import SchemaCheck, describe, schema_url, versions_of
from whale.testing import FakeView, schema_record

V1: dict[str, Any] = {
    "type": "object",
    "required": ["host"],
    "properties": {"host": {"type": "string"}, "seen": {"type": "string", "format": "date"}},
}
V2: dict[str, Any] = {**V1, "required": ["host", "value"], "properties": {**V1["properties"], "value": {}}}
BASE = "https://whale.example.com"


def registered(*schemas: dict[str, Any], type_: str = "test.alert") -> CloudEvent:
    return schema_record(type_, *schemas)


@pytest.fixture
def check() -> SchemaCheck:
    return SchemaCheck(FakeView({"test.alert": registered(V1, V2)}))


def alert(data: Any, **attrs: Any) -> CloudEvent:
    return CloudEvent.create(type=attrs.pop("type", "test.alert"), source="/test", data=data, **attrs)


def test_an_event_keeping_the_latest_version_has_no_problems(check: SchemaCheck) -> None:
    assert check.problems(alert({"host": "db1", "value": 3})) == []


def test_an_unregistered_type_is_refused_on_type(check: SchemaCheck) -> None:
    [problem] = check.problems(alert({"host": "db1"}, type="test.unknown"))
    assert problem["field"] == "type"
    assert "'test.unknown' is not registered" in problem["message"]


def test_a_bad_format_is_refused_with_the_field_and_pointer(check: SchemaCheck) -> None:
    [problem] = check.problems(alert({"host": "db1", "value": 1, "seen": "2026-13-01"}))
    assert problem == {
        "field": "data.seen",
        "pointer": "/seen",
        "message": "'2026-13-01' is not a 'date'",
    }


def test_nested_fields_are_named_with_dots_and_indexes() -> None:
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "integer"}}}}
    check = SchemaCheck(FakeView({"t": registered(schema, type_="t")}))
    [problem] = check.problems(alert({"items": [1, "two"]}, type="t"))
    assert (problem["field"], problem["pointer"]) == ("data.items[1]", "/items/1")
    assert describe([problem]) == "data.items[1]: 'two' is not of type 'integer'"


def test_dataschema_naming_an_older_version_is_checked_against_that_version() -> None:
    check = SchemaCheck(FakeView({"test.alert": registered(V1, V2)}), base_url=BASE)
    v1_only = {"host": "db1"}  # no "value": fine for version 1, not for version 2
    assert check.problems(alert(v1_only, dataschema=schema_url(BASE, "test.alert", 1))) == []
    assert [p["field"] for p in check.problems(alert(v1_only))] == ["data"]


def test_dataschema_naming_an_unknown_version_is_refused_on_dataschema(check: SchemaCheck) -> None:
    url = schema_url(BASE, "test.alert", 9)
    [problem] = check.problems(alert({"host": "db1", "value": 1}, dataschema=url))
    assert problem["field"] == "dataschema"
    assert url in problem["message"]


def test_without_a_base_url_any_version_url_of_the_type_selects_the_version(check: SchemaCheck) -> None:
    assert (
        check.problems(alert({"host": "db1"}, dataschema="http://ec:8080/schemas/test.alert/versions/1"))
        == []
    )
    foreign = "https://schemas.example.org/alert.json"  # not a version URL: the latest applies
    assert [p["field"] for p in check.problems(alert({"host": "db1"}, dataschema=foreign))] == ["data"]


def test_with_a_base_url_a_foreign_dataschema_leaves_the_latest_in_force() -> None:
    check = SchemaCheck(FakeView({"test.alert": registered(V1, V2)}), base_url=BASE)
    other = "http://elsewhere/schemas/test.alert/versions/1"
    assert [p["field"] for p in check.problems(alert({"host": "db1"}, dataschema=other))] == ["data"]


def test_non_json_data_needs_a_schema_that_declares_its_media_type() -> None:
    check = SchemaCheck(
        FakeView(
            {
                "strict": registered(V1, type_="strict"),
                "text": registered({"contentMediaType": "text/*"}, type_="text"),
            }
        )
    )
    [problem] = check.problems(alert("plain words", type="strict", datacontenttype="text/plain"))
    assert problem["field"] == "datacontenttype"
    assert check.problems(alert("plain words", type="text", datacontenttype="text/plain")) == []


def test_one_validator_is_compiled_per_version(check: SchemaCheck) -> None:
    first, second = check.versions("test.alert")
    assert check.validator(first) is check.validator(first)
    assert check.validator(first) is not check.validator(second)


def test_a_new_version_applies_as_soon_as_the_source_has_it() -> None:
    view = FakeView({"test.alert": registered(V1)})
    check = SchemaCheck(view)
    assert check.problems(alert({"host": "db1"})) == []
    view.apply("test.alert", registered(V1, V2))
    assert [p["field"] for p in check.problems(alert({"host": "db1"}))] == ["data"]


def test_versions_of_reads_a_registry_record() -> None:
    assert [v.version for v in versions_of("test.alert", registered(V1, V2))] == [1, 2]
    assert versions_of("test.alert", None) == []
