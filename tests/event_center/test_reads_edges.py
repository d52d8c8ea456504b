"""Reads never break on one stored event: deep documents, refused filters (GET /events, /todos)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import todo_api

from whale import authz
from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.es.store import Store
from whale.settings import WhaleSettings

from .fakes import Harness


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_hit(depth: int) -> dict[str, Any]:
    data = '{"a":' * depth + "1" + "}" * depth
    raw = '{"specversion":"1.0","id":"deep","source":"/s","type":"t","data":' + data + "}"
    return {"_source": {"kind": "event", "raw": raw, "topic": "whale.events", "time": "t"}, "sort": [1, "a"]}


@pytest.mark.parametrize("depth", [300, 5_000])
def test_listing_and_lookup_survive_a_deep_stored_event(harness: Harness, depth: int) -> None:
    harness.store.hits = [deep_hit(depth)]
    listed = harness.client.get("/events")
    assert listed.status_code == 200, listed.text
    assert isinstance(listed.json()["events"][0]["event"], str)  # shown as its JSON text
    one = harness.client.get("/events/s/deep")
    assert one.status_code == 200


@pytest.mark.parametrize("name", ["since", "until"])
def test_an_offset_elasticsearch_refuses_is_400_naming_the_parameter(harness: Harness, name: str) -> None:
    response = harness.client.get("/events", params={name: "2026-01-01T00:00:00+20:06"})
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == name


async def test_elasticsearch_answering_400_is_a_400_not_503() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        error = {"root_cause": [{"type": "parse_exception", "reason": "failed to parse date field [x]"}]}
        return httpx.Response(400, json={"error": error, "status": 400})

    store = Store("http://es.invalid", "whale-events")
    store._client = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://es.invalid")
    with pytest.raises(EventError) as err:
        await store.search({"query": {}})
    assert "failed to parse date" in err.value.message
    assert (err.value.status, err.value.code) == (400, "invalid_event")


class DeepView:
    def __init__(self) -> None:
        item = {"id": "t1", "status": "open", "details": nested(300), "updated_at": "x"}
        self.event = CloudEvent.model_construct(id="t1", source="/s", type="t", data=item, extensions={})

    async def start(self) -> None:
        return None

    def items(self) -> dict[str, CloudEvent]:
        return {"t1": self.event}

    def get(self, key: str) -> CloudEvent | None:
        return self.event if key == "t1" else None


def test_todos_survive_an_item_with_deep_details() -> None:
    app = FastAPI()
    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    todo_api.install(app, object(), WhaleSettings(), view=DeepView())
    client = TestClient(app)
    listed = client.get("/todos", params={"status": "all"})
    assert listed.status_code == 200, listed.text
    assert isinstance(listed.json()["todos"][0]["details"], str)
    assert client.get("/todos/t1").status_code == 200


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/events", "GET, HEAD, POST"), ("/todos", "GET, HEAD, POST"), ("/healthz", "GET, HEAD")],
)
def test_options_is_405_with_every_allowed_method(harness: Harness, path: str, allow: str) -> None:
    response = harness.client.options(path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_a_todo_with_hostile_text_or_too_deep_details_is_4xx_not_500(harness: Harness) -> None:
    surrogate = harness.client.post(
        "/todos", content=b'{"title": "a\\ud800"}', headers={"content-type": "application/json"}
    )
    assert surrogate.status_code in (400, 422), surrogate.text
    for depth in (100, 200):
        deep = harness.client.post("/todos", json={"title": "t", "details": nested(depth)})
        assert deep.status_code == 400, deep.text
        assert deep.json()["problems"][0]["field"] == "data"
