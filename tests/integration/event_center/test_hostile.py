"""Hostile input against the real event center, Kafka and Elasticsearch: every bad request is a 4xx
naming what is wrong, nothing of a refused request reaches Kafka (no half-written batch), accepted
events of every content mode round-trip, and the reads (listing, lookup, search, to-dos) keep working.
What the event center wrote is then read with the official CloudEvents SDK in strict mode."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.sdk_strict import read_strict
from whale.es.store import Store
from whale.testing import Tap

from .live import Pipeline

pytestmark = pytest.mark.integration
STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def raw_nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


class Sender:
    """Posts requests, remembering every event id tried, so a test can prove none was written."""

    def __init__(self, pipeline: Pipeline, http: httpx.Client) -> None:
        self.pipeline = pipeline
        self.http = http
        self.refused_ids: set[str] = set()

    def event(self, **overrides: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": self.pipeline.source_prefix + "hostile",
            "type": self.pipeline.type,
            "time": "2026-11-23T12:00:00Z",
            "data": {"host": "db1", "value": 1},
        }
        doc.update(overrides)
        return doc

    def refused(self, body: bytes | Any, headers: dict[str, str] | None = None, *ids: str) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.refused_ids.update(ids)
        return self.http.post("/events", content=raw, headers=headers or STRUCTURED)


@pytest.fixture(scope="module")
def any_type(pipeline: Pipeline, http: httpx.Client) -> str:
    name = pipeline.type + ".any"
    assert http.put(f"/schemas/{name}", json={}).status_code == 200
    return name


@pytest.fixture(scope="module")
def taps(pipeline: Pipeline) -> Iterator[tuple[Tap, Tap]]:
    ingest, events = (
        Tap(pipeline.stack, pipeline.settings.ingest_topic, from_start=True),
        Tap(pipeline.stack, pipeline.events_topic, from_start=True),
    )
    yield ingest, events
    ingest.close()
    events.close()


def _field(response: httpx.Response) -> str:
    return str(response.json()["problems"][0]["field"])


def test_hostile_events_are_4xx_naming_the_field_and_nothing_is_written(
    pipeline: Pipeline, http: httpx.Client, taps: tuple[Tap, Tap], any_type: str
) -> None:
    s = Sender(pipeline, http)
    cases: list[tuple[str, httpx.Response, int, str | None]] = []

    def case(name: str, response: httpx.Response, status: int, field: str | None = None) -> None:
        cases.append((name, response, status, field))

    e = s.event(data={"host": "h", "value": 1, "x": json.loads(raw_nested(100))})
    case("data 100 deep", s.refused(e, None, e["id"]), 400, "data")
    e = s.event()
    deep = json.dumps(e).replace('"value": 1', '"value": 1, "x": ' + raw_nested(5_000)).encode()
    case("data 5000 deep", s.refused(deep, None, e["id"]), 400, "data")
    for attr, value in (("id", "x\ud800"), ("subject", "\ud800"), ("ext", "\udc00")):
        e = s.event(**{attr: value})
        case(f"surrogate in {attr}", s.refused(json.dumps(e).encode(), None, e["id"]), 400, attr)
    e = s.event(data={"host": "\ud800", "value": 1})
    case("surrogate in data", s.refused(json.dumps(e).encode(), None, e["id"]), 400, "data")
    for attr, value in (("source", s.event()["source"] + "\x01"), ("subject", "a\nb"), ("ext", "a\x7f")):
        e = s.event(**{attr: value})
        case(f"control character in {attr}", s.refused(e, None, e["id"]), 400, attr)
    e = s.event(source=s.event()["source"] + "/a|b<c>")
    case("source not a URI-reference", s.refused(e, None, e["id"]), 400, "source")
    for bad_time in (
        "2018-04-05T18:31Z",
        "2018-04-05T17:31:00,123Z",
        "2018-04-05T17:31:00+0530",
        "1522949460",
        1522949460,
    ):
        e = s.event(time=bad_time)
        case(f"time {bad_time!r}", s.refused(e, None, e["id"]), 400, "time")
    e = s.event(big=2**31)
    case("integer extension beyond 32 bits", s.refused(e, None, e["id"]), 400, "big")
    e = s.event(subject="")
    case("empty subject", s.refused(e, None, e["id"]), 400, "subject")
    good1, bad, good2 = s.event(), s.event(data={"host": 1}), s.event()
    batch = [good1, bad, good2]
    case("batch good/bad/good", s.refused(batch, BATCH, *(x["id"] for x in batch)), 400)
    e = s.event()
    case("batch with a non-object", s.refused([e, 5], BATCH, e["id"]), 400)
    mixed = [s.event(), s.event(specversion="0.3")]
    case(
        "batch with mixed specversions",
        s.refused(mixed, BATCH, *(x["id"] for x in mixed)),
        400,
        "specversion",
    )
    binary_id = uuid.uuid4().hex
    binary = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": binary_id,
        "ce-source": s.event()["source"],
        "ce-type": pipeline.type,
    }
    case("binary deep JSON", s.refused(raw_nested(5_000).encode(), binary, binary_id), 400, "data")
    text_id = uuid.uuid4().hex
    text_headers = {**binary, "content-type": "text/plain", "ce-id": text_id}
    case("text for a JSON-only type", s.refused(b"hello", text_headers, text_id), 400, "datacontenttype")
    e = s.event(data={"host": "x" * 1_000_500, "value": 1})
    case("over Kafka's record limit", s.refused(e, None, e["id"]), 413)
    e = s.event(data={"host": "x" * 1_050_000, "value": 1})
    case("over the event limit", s.refused(e, None, e["id"]), 413)
    for name, response, status, field in cases:
        assert response.status_code == status, f"{name}: {response.status_code} {response.text[:300]}"
        if field is not None:
            assert _field(response) == field, f"{name}: {response.text[:300]}"
        assert "retry-after" not in response.headers, name
    sentinel = s.event()
    assert s.http.post("/events", json=sentinel, headers=STRUCTURED).status_code == 202
    ingest, events = taps
    assert events.wait(lambda ev: ev.id == sentinel["id"])
    ingest.wait(lambda ev: ev.id == sentinel["id"])
    written = {ev.id for ev, _ in ingest.seen} | {ev.id for ev, _ in events.seen}
    assert not (written & s.refused_ids), "a refused request was (half-)written"


def test_sizes_around_the_kafka_limit(pipeline: Pipeline, http: httpx.Client, taps: tuple[Tap, Tap]) -> None:
    s = Sender(pipeline, http)
    fits = s.event(data={"host": "x" * 999_000, "value": 1})
    assert http.post("/events", json=fits, headers=STRUCTURED).status_code == 202
    over = s.event(data={"host": "x" * 999_900, "value": 1})
    response = http.post("/events", json=over, headers=STRUCTURED)
    assert response.status_code == 413 and "1000000" in response.json()["message"]
    assert taps[1].wait(lambda ev: ev.id == fits["id"])  # accepted = forwarded by the dedupe stage


def test_every_content_mode_round_trips(
    pipeline: Pipeline, http: httpx.Client, taps: tuple[Tap, Tap], any_type: str
) -> None:
    source = pipeline.source_prefix + "modes"
    sent: dict[str, bytes] = {}
    for content_type, body in (
        ("text/plain; charset=utf-8", "héllo".encode()),
        ("application/xml", b"<a>1</a>"),
        ("application/octet-stream", b"\x00\xff\x10"),
    ):
        event_id = uuid.uuid4().hex
        headers = {"content-type": content_type, "ce-specversion": "1.0", "ce-id": event_id}
        headers.update({"ce-source": source, "ce-type": any_type, "ce-time": "2016-12-31T23:59:60Z"})
        response = http.post("/events", content=body, headers=headers)
        assert response.status_code == 202, response.text
        sent[event_id] = body
    doc_id = uuid.uuid4().hex
    payload = b"\x01binary\x02"
    doc = {"specversion": "1.0", "id": doc_id, "source": source, "type": any_type}
    doc["data_base64"] = base64.b64encode(payload).decode()
    assert http.post("/events", json=doc, headers=STRUCTURED).status_code == 202
    sent[doc_id] = payload
    found = taps[1].wait(lambda ev: ev.id in sent, count=len(sent))
    assert {ev.id: ev.data for ev in found} == sent
    deadline = time.monotonic() + 60
    while True:
        one = http.get(f"/events/{source}/{doc_id}")
        if one.status_code == 200:
            break
        assert time.monotonic() < deadline, one.text
        time.sleep(0.5)
    assert base64.b64decode(one.json()["event"]["data_base64"]) == payload


def test_reads_keep_working_also_with_an_old_over_deep_document(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    store = Store(pipeline.stack.es_url, pipeline.settings.index_prefix)
    index = store.index_for(datetime.now(UTC))
    raw = '{"specversion":"1.0","id":"old-deep","source":"/old","type":"t","data":' + raw_nested(300) + "}"
    doc = {
        "kind": "event",
        "raw": raw,
        "topic": "old",
        "time": datetime.now(UTC).isoformat(),
        "doc_id": "old-deep",
    }
    put = httpx.put(f"{pipeline.stack.es_url}/{index}/_doc/old-deep?refresh=true", json=doc, timeout=30)
    assert put.status_code in (200, 201), put.text
    listed = http.get("/events", params={"size": 200})
    assert listed.status_code == 200, listed.text
    assert any(isinstance(e["event"], str) for e in listed.json()["events"])
    assert http.get("/events", params={"q": "db1"}).status_code == 200
    refused = http.get("/events", params={"since": "2026-01-01T00:00:00+20:06"})
    assert refused.status_code == 400 and refused.json()["problems"][0]["field"] == "since"
    assert http.get("/todos", params={"status": "all"}).status_code == 200


def test_what_the_event_center_wrote_is_read_by_the_sdk_in_strict_mode(taps: tuple[Tap, Tap]) -> None:
    ingest, events = taps
    ingest.poll(1.0)
    events.poll(1.0)
    messages = ingest.messages + events.messages
    assert messages
    for message in messages:
        read_strict(message)
