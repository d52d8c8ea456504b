"""Property-based runs over the HTTP API: arbitrary input never produces a 5xx; OpenAPI is served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fakes import TOKEN, Harness, make_harness

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ATTRS = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3", 1]),
        "id": st.text(max_size=5) | st.integers(),
        "source": st.sampled_from(["urn:test:alerts/a", "urn:test:other", "", "a b"]),
        "type": st.sampled_from(["test.alert", "unknown", ""]),
        "time": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "x"]),
        "subject": st.text(max_size=5),
        "datacontenttype": st.sampled_from(["application/json", "text/plain", "bad"]),
        "dataschema": st.sampled_from(["http://127.0.0.1:8080/schemas/test.alert/versions/1", "rel", "x:y"]),
        "data": JSON,
        "data_base64": st.sampled_from(["aGk=", "!!"]),
        "myext": JSON,
    },
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/json",
        "text/plain",
        "",
    ]
)
BODIES = (
    ATTRS.map(json.dumps)
    | st.lists(ATTRS, max_size=3).map(json.dumps)
    | JSON.map(json.dumps)
    | st.text(max_size=30)
)


def declared(h: Harness, path: str, method: str) -> set[str]:
    """The status codes the served OpenAPI document declares for one operation."""
    doc = h.client.get("/openapi.json").json()
    return set(doc["paths"][path][method]["responses"])


@pytest.fixture(scope="module")
def shared() -> Iterator[Harness]:
    yield from make_harness()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, content_type=CONTENT_TYPES, binary=st.booleans())
def test_post_events_never_answers_5xx(shared: Harness, body: str, content_type: str, binary: bool) -> None:
    headers = {"content-type": content_type, "authorization": f"Bearer {TOKEN}"}
    if binary:
        headers.update(
            {"ce-specversion": "1.0", "ce-id": "x", "ce-source": "urn:test:alerts/b", "ce-type": "test.alert"}
        )
    response = shared.client.post("/events", content=body.encode(), headers=headers)
    assert response.status_code < 500, response.text
    assert isinstance(response.json(), dict)
    assert str(response.status_code) in declared(shared, "/events", "post")


QUERY = st.dictionaries(
    st.sampled_from(["type", "source", "subject", "since", "until", "ext", "q", "size", "after", "kind"]),
    st.text(max_size=12),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(params=QUERY)
def test_search_parameters_never_answer_5xx(shared: Harness, params: dict[str, Any]) -> None:
    response = shared.client.get("/events", params=params)
    assert response.status_code < 500, response.text
    assert str(response.status_code) in declared(shared, "/events", "get")


def test_openapi_document_describes_every_route(shared: Harness) -> None:
    doc = shared.client.get("/openapi.json").json()
    assert {"/events", "/schemas", "/schemas/{type_name}", "/traces/{correlation_id}", "/readyz"} <= set(
        doc["paths"]
    )
    assert "application/cloudevents-batch+json" in doc["paths"]["/events"]["post"]["requestBody"]["content"]
