"""Backward-compatibility rules of schema versions (each rule has a test)."""

from __future__ import annotations

from typing import Any

import pytest
from whale_event_center.compat import breaks

BASE: dict[str, Any] = {
    "type": "object",
    "required": ["host"],
    "properties": {
        "host": {"type": "string", "maxLength": 100},
        "level": {"enum": ["low", "high"]},
        "value": {"type": "number", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def changed(**props: Any) -> dict[str, Any]:
    return {**BASE, "properties": {**BASE["properties"], **props}}


def rules(new: dict[str, Any]) -> set[tuple[str, str]]:
    return {(b["field"], b["rule"]) for b in breaks(BASE, new)}


def test_identical_and_widened_schemas_are_compatible() -> None:
    assert breaks(BASE, BASE) == []
    widened = changed(
        host={"type": ["string", "null"], "maxLength": 200},
        level={"enum": ["low", "high", "critical"]},
        value={"type": "number"},
        extra={"type": "string"},
    )
    assert breaks(BASE, widened) == []


def test_integer_to_number_widens() -> None:
    assert breaks({"type": "integer"}, {"type": "number"}) == []
    assert breaks({"type": "number"}, {"type": "integer"})[0]["rule"] == "narrowed_type"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ({**BASE, "required": ["host", "value"]}, ("/properties/value", "new_required")),
        ({**BASE, "required": []}, ("/properties/host", "removed_required")),
        (changed(host={"type": "integer"}), ("/properties/host", "narrowed_type")),
        (changed(level={"enum": ["low"]}), ("/properties/level", "narrowed_enum")),
        (changed(value={"type": "number", "minimum": 10}), ("/properties/value", "narrowed_bound")),
        (changed(host={"type": "string", "maxLength": 5}), ("/properties/host", "narrowed_bound")),
        (
            changed(host={"type": "string", "maxLength": 100, "pattern": "^a"}),
            ("/properties/host", "narrowed_pattern"),
        ),
        (
            changed(tags={"type": "array", "items": {"type": "integer"}}),
            ("/properties/tags/items", "narrowed_type"),
        ),
        (changed(host={"anyOf": [{"type": "string"}]}), ("/properties/host", "opaque")),
        ({**BASE, "additionalProperties": False}, ("/additionalProperties", "narrowed")),
    ],
)
def test_each_narrowing_is_reported_with_its_place_and_rule(
    new: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in rules(new)


def test_removing_a_required_property_declaration_is_a_break() -> None:
    props = {k: v for k, v in BASE["properties"].items() if k != "host"}
    assert ("/properties/host", "removed_required") in rules({**BASE, "properties": props})
