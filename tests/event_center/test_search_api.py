"""GET /events, /events/{source}/{id} and /traces over a fake Elasticsearch."""

from __future__ import annotations

import json

from whale.cloudevent import CloudEvent
from whale.correlation import caused_by

from .fakes import Harness


def hit(event: CloudEvent, sort: list[object]) -> dict[str, object]:
    raw = json.dumps(event.to_structured(), default=str)
    return {"_source": {"kind": "event", "raw": raw, "topic": "whale.events", "time": "t"}, "sort": sort}


def test_search_passes_filters_and_returns_a_cursor_when_the_page_is_full(harness: Harness) -> None:
    event = CloudEvent.create(type="test.alert", source="s", data={"a": 1})
    harness.store.hits = [hit(event, [1, "a"]), hit(event, [0, "b"])]
    response = harness.client.get(
        "/events", params={"type": "test.alert", "ext": "correlationid:c", "size": 2}
    )
    assert response.status_code == 200
    assert response.json()["events"][0]["event"]["id"] == event.id
    assert response.json()["next"]
    filters = harness.store.queries[-1]["query"]["bool"]["filter"]
    assert {"terms": {"type": ["test.alert"]}} in filters


def test_bad_extension_filter_is_400(harness: Harness) -> None:
    response = harness.client.get("/events", params={"ext": "NoColon"})
    assert response.status_code == 400 and response.json()["problems"][0]["field"] == "ext"


def test_missing_event_and_trace_are_404(harness: Harness) -> None:
    assert harness.client.get("/events/urn:a/b/id-1").status_code == 404
    assert harness.client.get("/traces/nothing").status_code == 404


def test_trace_returns_the_chain_in_causal_order(harness: Harness) -> None:
    root = CloudEvent.create(type="alert", source="s")
    child = caused_by(root, type="whale.action.requested", source="r")
    harness.store.hits = [hit(child, [1, "a"]), hit(root, [2, "b"])]
    body = harness.client.get(f"/traces/{root.id}").json()
    assert [e["event"]["id"] for e in body["events"]] == [root.id, child.id]
    assert body["events"][1]["causationid"] == root.id


def test_elasticsearch_down_is_503_with_retry_after(harness: Harness) -> None:
    from whale.es.store import StoreUnavailable

    async def down(query: object) -> dict[str, object]:
        raise StoreUnavailable("connection refused")

    harness.store.search = down  # type: ignore[method-assign]
    response = harness.client.get("/events")
    assert response.status_code == 503 and "retry-after" in response.headers


def test_sources_with_slashes_route_to_the_right_document(harness: Harness) -> None:
    from whale.es.documents import event_doc_id

    for path in ("/events/https://a.example/x/id1", "/events/https%3A%2F%2Fa.example%2Fx/id1"):
        harness.client.get(path)
        assert harness.store.queries[-1]["query"]["term"]["doc_id"] == event_doc_id(
            "https://a.example/x", "id1"
        )
