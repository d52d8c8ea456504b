"""One error body for every answer that is not a success, whatever raised it."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from whale.errors import DeliveryError, EventError
from whale.web.errors import install_error_handlers

KEYS = {"error", "message", "problems", "retryable"}


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app, retry_after=7)

    @app.get("/items")
    async def items(limit: Annotated[int, Query(ge=1)] = 10) -> dict[str, Any]:
        return {"limit": limit}

    @app.get("/invalid")
    async def invalid() -> None:
        raise EventError("bad data", [{"field": "data.x", "message": "not a number"}])

    @app.get("/down")
    async def down() -> None:
        raise DeliveryError("Kafka did not acknowledge")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return TestClient(app, raise_server_exceptions=False)


def test_a_whale_error_answers_its_status_with_the_one_body(client: TestClient) -> None:
    answer = client.get("/invalid")
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_event",
        "message": "bad data",
        "problems": [{"field": "data.x", "message": "not a number"}],
        "retryable": False,
    }


def test_a_retryable_503_says_when_to_retry(client: TestClient) -> None:
    answer = client.get("/down")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "7")
    assert answer.json()["retryable"] is True and answer.json()["error"] == "unavailable"


def test_a_request_validation_error_is_400_with_one_problem_per_field(client: TestClient) -> None:
    answer = client.get("/items", params={"limit": 0})
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == KEYS and body["error"] == "invalid_request"
    assert [p["field"] for p in body["problems"]] == ["query.limit"]


def test_unknown_routes_and_methods_answer_the_same_body(client: TestClient) -> None:
    missing = client.get("/nope")
    assert (missing.status_code, missing.json()["error"], set(missing.json())) == (404, "not_found", KEYS)
    wrong = client.post("/items")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


def test_an_unexpected_exception_is_500_without_internals(client: TestClient) -> None:
    answer = client.get("/crash")
    assert answer.status_code == 500
    assert answer.json()["error"] == "internal_error" and set(answer.json()) == KEYS
    assert "hunter2" not in answer.text and "RuntimeError" not in answer.text


def test_the_openapi_document_declares_400_with_the_error_body_instead_of_422(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    responses = doc["paths"]["/items"]["get"]["responses"]
    assert "422" not in responses
    assert responses["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
