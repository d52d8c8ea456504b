"""The OpenAPI request bodies are as strict as the real validation where that is simple."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from .fakes import Harness


def body_schema(harness: Harness, path: str, method: str, content_type: str = "application/json") -> Any:
    doc = harness.client.get("/openapi.json").json()
    return doc["paths"][path][method]["requestBody"]["content"][content_type]["schema"]


@pytest.mark.parametrize(("path", "method"), [("/rules/validate", "post"), ("/rules/{rule_id}", "put")])
def test_an_empty_rule_is_refused_by_the_documented_schema(harness: Harness, path: str, method: str) -> None:
    validator = Draft202012Validator(body_schema(harness, path, method))
    assert not validator.is_valid({})
    rule = {"id": "r1", "match": {"type": "x"}, "target": {"action": "a"}}
    assert validator.is_valid(rule)
    assert not validator.is_valid({**rule, "unknown": 1})


@pytest.mark.parametrize(
    "changes",
    [
        {"source": "/a|b<c>"},
        {"subject": "a\nb"},
        {"time": "2018-04-05T18:31Z"},
        {"time": "2018-04-05T17:31:00+0530"},
        {"big": 2**31},
        {"ext": "a\x01"},
        {"Upper": "x"},
    ],
)
def test_the_documented_event_schema_refuses_what_ingest_refuses(
    harness: Harness, changes: dict[str, Any]
) -> None:
    validator = Draft202012Validator(body_schema(harness, "/events", "post", "application/cloudevents+json"))
    event = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": "2018-04-05T17:31:00Z"}
    assert validator.is_valid(event)
    assert not validator.is_valid({**event, **changes})
