"""The schema check's fast path (whale.schemas.fast_validator): a compiled jsonschema-rs validator
confirms valid data, ``jsonschema`` still decides and names the problems otherwise, and schemas
where jsonschema-rs could be more lenient are left to ``jsonschema`` alone."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from whale.cloudevent import CloudEvent
from whale.schemas import SchemaCheck, data_problems, fast_validator
from whale.testing import FakeView, schema_record

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "required": ["host", "value"],
        "additionalProperties": False,
        "properties": {
            "host": {"type": "string", "minLength": 1, "maxLength": 8},
            "value": {"type": "number", "minimum": -10, "exclusiveMaximum": 2**64},
            "count": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "level": {"enum": ["low", "high", 1]},
            "seen": {"type": "string", "format": "date"},
            "ip": {"type": "string", "format": "ipv4"},
            "id": {"type": "string", "format": "uuid"},
            "mail": {"type": "string", "format": "email"},
        },
    },
    {"$defs": {"n": {"type": ["integer", "null"]}}, "type": "array", "items": {"$ref": "#/$defs/n"}},
    {"anyOf": [{"type": "string", "format": "ipv6"}, {"type": "boolean"}], "not": {"const": "::"}},
]
WORDS = st.sampled_from(
    ["", "db1", "x" * 9, "2026-01-31", "2026-13-01", "10.0.0.1", "10.0.0.256", "::1", "::", "a@b",
     "ab", "12345678-1234-1234-1234-123456789abc", "1234", "low", "high"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    WORDS,
)
KEYS = st.sampled_from(["host", "value", "count", "tags", "level", "seen", "ip", "id", "mail", "other"])
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=12,
)


@pytest.mark.parametrize("schema", SCHEMAS, ids=["object", "ref", "combinators"])
@settings(max_examples=150, deadline=None)
@given(data=JSON)
def test_the_fast_path_never_accepts_what_jsonschema_refuses(schema: dict[str, Any], data: Any) -> None:
    fast = fast_validator(schema)
    assert fast is not None
    slow = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    if fast(data):
        assert slow.is_valid(data)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a$"},
        {"patternProperties": {"^x": {}}},
        {"type": "number", "multipleOf": 0.1},
        {"uniqueItems": True},
        {"type": "string", "format": "regex"},
        {"$ref": "https://example.com/other.json"},
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"properties": {"a": {"$dynamicRef": "#node"}}},
    ],
    ids=["pattern", "patternProperties", "multipleOf", "uniqueItems", "regex", "remote", "draft7", "dynamic"],
)
def test_schemas_where_jsonschema_rs_may_be_more_lenient_get_no_fast_path(schema: dict[str, Any]) -> None:
    assert fast_validator(schema) is None


def test_invalid_data_gets_jsonschemas_problems_with_field_and_pointer() -> None:
    schema = SCHEMAS[0]
    check = SchemaCheck(FakeView({"t": schema_record("t", schema)}))
    data = {"host": "", "value": 1, "seen": "2026-13-01", "other": 1}
    event = CloudEvent.create(type="t", source="/test", data=data)
    slow = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = check.problems(event)
    assert problems == data_problems(slow, data)
    assert {p["pointer"] for p in problems} == {"/", "/host", "/seen"}


def test_data_the_fast_validator_cannot_read_is_left_to_jsonschema() -> None:
    fast = fast_validator({"type": "object"})
    assert fast is not None
    assert fast({1: "a key that is not a string"}) is False
