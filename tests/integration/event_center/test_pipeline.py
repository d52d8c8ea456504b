"""The event center end to end on the real Kafka and Elasticsearch: ingest, dedupe, index, search, trace."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from typing import Any

import httpx
import pytest
from whale_dedupe import metrics

from tests.ports import free_port
from whale.settings import WhaleSettings
from whale.testing import Tap

from .live import AppThread, LoopThread, Pipeline

pytestmark = pytest.mark.integration
STRUCTURED = {"content-type": "application/cloudevents+json"}


def event(p: Pipeline, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": p.source_prefix + "monitor",
        "type": p.type,
        "time": "2026-11-23T12:00:00Z",
        "data": {"host": "db1", "value": 97.5},
    }
    doc.update(overrides)
    return doc


def post(http: httpx.Client, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return http.post("/events", content=json.dumps(body).encode(), headers=headers or STRUCTURED)


def test_each_binding_mode_is_accepted_and_reaches_the_events_topic(
    pipeline: Pipeline, http: httpx.Client, events_tap: Tap
) -> None:
    structured = event(pipeline)
    assert post(http, structured).status_code == 202
    binary_id = uuid.uuid4().hex
    binary_headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": binary_id,
        "ce-source": pipeline.source_prefix + "binary",
        "ce-type": pipeline.type,
        "ce-subject": "db1",
    }
    response = http.post("/events", json={"host": "db1", "value": 1}, headers=binary_headers)
    assert response.status_code == 202, response.text
    batch = [event(pipeline), event(pipeline)]
    response = post(http, batch, {"content-type": "application/cloudevents-batch+json"})
    assert response.status_code == 202, response.text
    wanted = {structured["id"], binary_id, batch[0]["id"], batch[1]["id"]}
    found = events_tap.wait(lambda e: e.id in wanted, count=4)
    assert {e.id for e in found} == wanted
    by_id = {e.id: e for e in found}
    assert by_id[binary_id].subject == "db1" and by_id[binary_id].data == {"host": "db1", "value": 1}
    messages = {e.id: m for e, m in events_tap.seen}
    assert messages[binary_id].key == b"db1"  # forwarded with the event's own partition key


def test_invalid_events_are_refused_with_precise_problems(pipeline: Pipeline, http: httpx.Client) -> None:
    bad_attrs = post(http, event(pipeline, id="", time="not-a-time"))
    assert bad_attrs.status_code == 400
    assert {p["field"] for p in bad_attrs.json()["problems"]} == {"id", "time"}
    bad_data = post(http, event(pipeline, data={"host": 1}))
    assert bad_data.status_code == 400
    assert {(p["pointer"], p["message"]) for p in bad_data.json()["problems"]} == {
        ("/", "'value' is a required property"),
        ("/host", "1 is not of type 'string'"),
    }
    unregistered = post(http, event(pipeline, type=f"test.ec.{uuid.uuid4().hex}.never"))
    assert unregistered.status_code == 400 and unregistered.json()["problems"][0]["field"] == "type"


def test_token_grants_are_enforced(pipeline: Pipeline, http: httpx.Client) -> None:
    wrong_source = post(http, event(pipeline, source="urn:test:someone-else"))
    assert wrong_source.status_code == 403
    assert "may not publish" in wrong_source.json()["message"]
    anonymous = httpx.post(str(http.base_url.join("/events")), json=event(pipeline), headers=STRUCTURED)
    assert anonymous.status_code == 401


DEDUPE = metrics.registry()  # the dedupe stage runs in this test process


def _duplicates() -> float:
    return DEDUPE.get_sample_value("whale_event_center_dedupe_events_total", {"outcome": "duplicate"}) or 0.0


def _wait_duplicates(at_least: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _duplicates() < at_least:
        assert time.monotonic() < deadline, "the dedupe stage did not see the duplicate"
        time.sleep(0.1)


def test_a_duplicate_is_not_republished_also_after_a_restart(
    pipeline: Pipeline, http: httpx.Client, events_tap: Tap
) -> None:
    original = event(pipeline)
    assert post(http, original).status_code == 202
    assert len(events_tap.wait(lambda e: e.id == original["id"])) == 1
    before = _duplicates()
    assert post(http, original).status_code == 202  # answered as accepted
    _wait_duplicates(before + 1)
    pipeline.stop_dedupe()
    pipeline.start_dedupe()  # the window is restored from the changelog
    assert post(http, original).status_code == 202
    _wait_duplicates(before + 2)
    events_tap.poll(1.0)
    assert len([e for e, _ in events_tap.seen if e.id == original["id"]]) == 1


def test_a_duplicate_is_caught_after_the_dedupe_store_was_lost(
    pipeline: Pipeline, http: httpx.Client, events_tap: Tap
) -> None:
    """The local store is deleted while the stage is down: it is rebuilt from the changelog."""
    original = event(pipeline)
    assert post(http, original).status_code == 202
    assert len(events_tap.wait(lambda e: e.id == original["id"])) == 1
    before = _duplicates()
    pipeline.stop_dedupe()
    store = pipeline.dedupe_settings.state.dir / f"dedupe-{pipeline.dedupe_settings.changelog}"
    assert store.is_dir()
    shutil.rmtree(store)
    pipeline.start_dedupe()
    assert post(http, original).status_code == 202
    _wait_duplicates(before + 1)
    events_tap.poll(1.0)
    assert len([e for e, _ in events_tap.seen if e.id == original["id"]]) == 1
    assert store.is_dir()


def _poll(http: httpx.Client, path: str, ok: Any, timeout: float = 30, **params: Any) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(path, params=params)
        if response.status_code == 200 and ok(response.json()):
            return response.json()
        assert time.monotonic() < deadline, (
            f"{path} never matched: {response.status_code} {response.text[:500]}"
        )
        time.sleep(0.5)


def test_accepted_events_are_searchable_and_their_trace_is_retrievable(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    needle = f"needle{uuid.uuid4().hex[:8]}"
    root = event(pipeline, data={"host": "db1", "value": 99, "note": f"disk {needle} full"}, subject="db1")
    child = event(pipeline, time="2026-11-23T12:00:01Z", correlationid=root["id"], causationid=root["id"])
    grandchild = event(
        pipeline, time="2026-11-23T12:00:00.5Z", correlationid=root["id"], causationid=child["id"]
    )
    for doc in (grandchild, child, root):
        assert post(http, doc).status_code == 202
    found = _poll(http, "/events", lambda b: len(b["events"]) == 1, q=needle, type=pipeline.type)
    assert found["events"][0]["event"]["id"] == root["id"]
    one = _poll(http, f"/events/{root['source']}/{root['id']}", lambda b: True)
    assert one["event"]["data"]["note"] == f"disk {needle} full"
    by_ext = _poll(http, "/events", lambda b: len(b["events"]) == 2, ext=f"correlationid:{root['id']}")
    assert {e["event"]["id"] for e in by_ext["events"]} == {child["id"], grandchild["id"]}
    chain = _poll(http, f"/traces/{root['id']}", lambda b: len(b["events"]) == 3)
    assert [e["event"]["id"] for e in chain["events"]] == [root["id"], child["id"], grandchild["id"]]
    assert [e["causationid"] for e in chain["events"]] == [None, root["id"], child["id"]]


def test_search_pages_are_stable_with_search_after(pipeline: Pipeline, http: httpx.Client) -> None:
    subject = f"page-{uuid.uuid4().hex[:8]}"
    ids = {
        doc["id"]
        for doc in [event(pipeline, subject=subject) for _ in range(5)]
        if post(http, doc).status_code == 202
    }
    _poll(http, "/events", lambda b: len(b["events"]) == 5, subject=subject, size=10)
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"subject": subject, "size": 2, **({"after": after} if after else {})}
        page = http.get("/events", params=params).json()
        seen += [e["event"]["id"] for e in page["events"]]
        after = page["next"]
        if not after:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_an_incompatible_schema_change_is_refused(pipeline: Pipeline, http: httpx.Client) -> None:
    narrowed = {
        "type": "object",
        "required": ["host", "value", "region"],
        "properties": {"host": {"type": "integer"}},
    }
    response = http.put(f"/schemas/{pipeline.type}", json=narrowed)
    assert response.status_code == 409
    rules = {p["rule"] for p in response.json()["problems"]}
    assert {"new_required", "narrowed_type"} <= rules
    assert http.get(f"/schemas/{pipeline.type}").json()["versions"][-1]["version"] == 1


def test_readyz_checks_kafka_and_elasticsearch_and_metrics_are_served(http: httpx.Client) -> None:
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "kafka": True,
        "elasticsearch": True,
        "registry": True,
    }
    assert "whale_event_center_events_total" in http.get("/metrics").text


def test_kafka_unreachable_is_503_never_202(pipeline: Pipeline, stack: WhaleSettings) -> None:
    """The app pointed at a closed port: the registry cannot load and nothing is acknowledged."""
    closed = WhaleSettings(kafka_bootstrap=f"127.0.0.1:{free_port()}", es_url=stack.es_url)
    settings = pipeline.settings.model_copy(
        update={"whale": closed, "port": free_port(), "produce_timeout": 1.5}
    )
    with AppThread(settings) as app, pipeline.client(app.url) as client:
        response = post(client, event(pipeline))
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(settings.retry_after)
        assert client.get("/readyz").status_code == 503


def test_kafka_not_acknowledging_the_write_is_503(
    pipeline: Pipeline, center: AppThread, http: httpx.Client, events_tap: Tap
) -> None:
    """Registry loaded from the real broker, producer pointed at a closed port: 503, not 202; the
    sender's retry once Kafka answers is accepted and the event reaches the bus exactly once."""
    from whale_event_center import components

    from whale.producer import EventProducer

    closed = WhaleSettings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    settings = pipeline.settings.model_copy(update={"port": free_port(), "produce_timeout": 1.5})
    real = components.build(settings)
    real.producer.close(1)
    real.producer = EventProducer(closed, delivery_timeout_ms=1500)
    with AppThread(settings, real) as app, pipeline.client(app.url) as client:
        app.wait_ready()
        _poll(client, f"/schemas/{pipeline.type}", lambda b: True)
        refused = event(pipeline)
        response = post(client, refused)
        assert response.status_code == 503, response.text
        assert "did not acknowledge" in response.json()["message"]
    assert post(http, refused).status_code == 202  # the retry, against a Kafka that answers
    assert len(events_tap.wait(lambda e: e.id == refused["id"])) == 1
    events_tap.poll(1.0)
    assert len([e for e, _ in events_tap.seen if e.id == refused["id"]]) == 1


def test_indexing_pauses_while_elasticsearch_is_down_and_catches_up(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    """An indexer whose Elasticsearch is unreachable commits nothing; a restart on the real one indexes all."""
    from confluent_kafka import Consumer, TopicPartition
    from whale_indexer.app import Indexer

    from whale.es.store import Store

    doc = event(pipeline, subject=f"outage-{uuid.uuid4().hex[:8]}")
    assert post(http, doc).status_code == 202
    group = f"test-ec-outage-{uuid.uuid4().hex[:8]}"
    prefix = f"test-ec-outage-{uuid.uuid4().hex[:8]}"
    settings = pipeline.indexer_settings.model_copy(update={"group": group, "index_prefix": prefix})
    down = LoopThread(
        lambda: Indexer(settings, Store(f"http://127.0.0.1:{free_port()}", prefix, timeout=1))
    ).start()
    time.sleep(5)
    down.stop()
    probe = Consumer({**pipeline.stack.kafka_config(), "group.id": group})
    topic = pipeline.events_topic
    committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    probe.close()
    assert all(tp.offset < 0 for tp in committed), committed  # nothing committed during the outage
    up = LoopThread(lambda: Indexer(settings, Store(pipeline.stack.es_url, prefix))).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            found = httpx.post(
                f"{pipeline.stack.es_url}/{prefix}-*/_search",
                json={"query": {"term": {"id": doc["id"]}}},
                params={"allow_no_indices": "true"},
            ).json()
            if found.get("hits", {}).get("hits"):
                break
            assert time.monotonic() < deadline, "the indexer did not catch up"
            time.sleep(0.5)
    finally:
        up.stop()
        httpx.delete(f"{pipeline.stack.es_url}/{prefix}-*")
        httpx.delete(f"{pipeline.stack.es_url}/_index_template/{prefix}")


def test_dead_letters_are_indexed_with_their_reason_and_headers(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    """A poison message (not a CloudEvent) on the DLQ is stored and searchable with kind=dlq."""
    from whale_event_center.search import EventQuery, search
    from whale_indexer.app import Indexer

    from whale.admin import ensure_topics
    from whale.binding import KafkaMessage
    from whale.dead_letter import dlq_message
    from whale.es.store import Store, StoreUnavailable
    from whale.producer import EventProducer
    from whale.topics import TopicSpec

    dlq = f"test.ec.{pipeline.uid}.dlq"
    ensure_topics(pipeline.stack, [TopicSpec(dlq, 1, "test dlq", retention_ms=3_600_000)])
    prefix = f"test-ec-dlq-{uuid.uuid4().hex[:8]}"
    settings = pipeline.indexer_settings.model_copy(
        update={"group": f"test-ec-dlq-{uuid.uuid4().hex[:8]}", "index_prefix": prefix,
                "topics": [dlq], "dlq_topic": dlq}
    )  # fmt: skip
    marker = uuid.uuid4().hex
    poison = KafkaMessage(b"k", b"\xff not json", (("x-marker", marker.encode()),))
    copy = dlq_message(
        poison, reason="unreadable: garbage", topic="whale.events", partition=2, offset=41, group="g"
    )
    producer = EventProducer(pipeline.stack)
    producer.send_blocking(dlq, copy)
    producer.close()
    indexer = LoopThread(lambda: Indexer(settings, Store(pipeline.stack.es_url, prefix))).start()
    store = Store(pipeline.stack.es_url, prefix)

    async def find() -> dict[str, Any]:
        try:
            return await search(store, EventQuery(kind="dlq"))
        except StoreUnavailable:  # the new index's shard is still being allocated
            return {"events": []}
        finally:
            await store.close()

    try:
        deadline = time.monotonic() + 60
        while True:
            store = Store(pipeline.stack.es_url, prefix)
            found = asyncio.run(find())["events"]
            if found:
                break
            assert time.monotonic() < deadline, "the dead letter was not indexed"
            time.sleep(0.5)
        assert found[0]["dlq"]["reason"] == "unreadable: garbage" and found[0]["dlq"]["offset"] == 41
        assert found[0]["headers"]["x-marker"] == marker
    finally:
        indexer.stop()
        httpx.delete(f"{pipeline.stack.es_url}/{prefix}-*")
        httpx.delete(f"{pipeline.stack.es_url}/_index_template/{prefix}")


def test_retention_deletes_daily_indices_older_than_the_setting(stack: WhaleSettings) -> None:
    from whale.es.store import Store

    prefix = f"test-ec-ret-{uuid.uuid4().hex[:8]}"
    for day in ("2001.01.01", time.strftime("%Y.%m.%d", time.gmtime())):
        assert (
            httpx.put(
                f"{stack.es_url}/{prefix}-{day}", json={"settings": {"number_of_replicas": 0}}
            ).status_code
            == 200
        )

    async def expire() -> list[str]:
        store = Store(stack.es_url, prefix)
        try:
            return await store.expire(30)
        finally:
            await store.close()

    try:
        assert asyncio.run(expire()) == [f"{prefix}-2001.01.01"]
        left = httpx.get(
            f"{stack.es_url}/_cat/indices/{prefix}-*", params={"format": "json", "h": "index"}
        ).json()
        assert [row["index"] for row in left] == [f"{prefix}-{time.strftime('%Y.%m.%d', time.gmtime())}"]
    finally:
        httpx.delete(f"{stack.es_url}/{prefix}-*")
