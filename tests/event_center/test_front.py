"""POST /events answered ahead of the middleware stack (whale_event_center.front): the same answers as
the FastAPI route, the one error body for crashes and oversized requests, the rest of the app as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs
from whale_event_center.front import IngestFront
from whale_event_center.service import Ingest

from .fakes import TOKEN, Harness, make_harness
from .test_ingest_api import BATCH, STRUCTURED, event

KEYS = {"error", "message", "problems", "retryable"}


@pytest.fixture
def small() -> Iterator[Harness]:
    yield from make_harness(max_request_bytes=2_000)


def _requests() -> list[tuple[dict[str, str], bytes]]:
    auth = {"authorization": f"Bearer {TOKEN}"}
    structured = {**auth, "content-type": STRUCTURED}
    return [
        (structured, json.dumps(event()).encode()),
        (structured, json.dumps(event(id="")).encode()),
        (structured, b"{not json"),
        ({"content-type": STRUCTURED, "authorization": ""}, json.dumps(event()).encode()),
        ({"content-type": STRUCTURED, "authorization": "Bearer nope"}, json.dumps(event()).encode()),
        ({**auth, "content-type": BATCH}, json.dumps([event(id="b-1"), event(id="b-2")]).encode()),
        ({**auth, "content-type": BATCH}, json.dumps([event(id="b-3"), event(id=None)]).encode()),
        (
            {**auth, "ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "urn:test:alerts/db"}
            | {"ce-type": "test.alert", "content-type": "application/json"},
            json.dumps({"host": "db1", "value": 1}).encode(),
        ),
        ({**auth, "content-type": "text/plain"}, b"hello"),
        ({**auth, "content-type": STRUCTURED}, json.dumps(event(data={"host": "x" * 3_000})).encode()),
    ]


def test_post_events_is_answered_ahead_of_the_middleware_stack(harness: Harness) -> None:
    assert (
        harness.client.post("/events", json=event(), headers={"content-type": STRUCTURED}).status_code == 202
    )
    assert isinstance(harness.client.app.middleware_stack, IngestFront)  # type: ignore[attr-defined]


def test_answers_are_those_of_the_fastapi_route(small: Harness) -> None:
    # under a root path the front passes the request on: the FastAPI route answers it
    routed = TestClient(small.client.app, root_path="/ec")
    for headers, body in _requests():
        ahead = small.client.post("/events", content=body, headers=headers)
        through = routed.post("/ec/events", content=body, headers=headers)
        assert (ahead.status_code, ahead.json()) == (through.status_code, through.json()), body[:80]
        for name in ("content-type", "retry-after", "www-authenticate"):
            assert ahead.headers.get(name) == through.headers.get(name), name


def test_a_request_over_the_size_limit_is_413_in_the_one_error_body(small: Harness) -> None:
    body = json.dumps([event(id=f"e-{i}") for i in range(40)]).encode()
    answer = small.client.post("/events", content=body, headers={"content-type": BATCH})
    assert answer.status_code == 413 and set(answer.json()) == KEYS
    assert answer.json()["error"] == "too_large" and "2000" in answer.json()["message"]


def test_a_crash_is_500_internal_error_and_logged(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    async def crash(*_: Any) -> Any:
        raise RuntimeError("boom: secret internals")

    monkeypatch.setattr(Ingest, "handle", crash)
    with capture_logs() as logs:
        answer = harness.client.post("/events", json=event(), headers={"content-type": STRUCTURED})
    assert answer.status_code == 500 and set(answer.json()) == KEYS
    assert answer.json()["error"] == "internal_error" and "boom" not in answer.text
    assert any(entry["event"] == "request_crashed" for entry in logs)


def test_other_methods_and_paths_go_through_the_app(harness: Harness) -> None:
    refused = harness.client.put("/events", json=event())
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, POST"
    assert set(refused.json()) == KEYS
    assert harness.client.get("/events").status_code == 200
    slash = harness.client.post("/events/", json=event(), follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"].endswith("/events")  # Starlette's


def test_openapi_still_documents_post_events(harness: Harness) -> None:
    operation = harness.client.get("/openapi.json").json()["paths"]["/events"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        STRUCTURED,
        BATCH,
        "application/json",
    }
    assert "202" in operation["responses"]
