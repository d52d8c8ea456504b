"""POST /events through the app with in-memory Kafka: binding modes, contracts, auth, limits."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from whale_event_center.auth import sign
from whale_event_center.service import ingest_key

from whale import topics
from whale.schemas import SchemaCheck
from whale.testing import capture_events

from .fakes import OTHER_TOKEN, SECRET, TOKEN, Harness

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


def event(**overrides: Any) -> dict[str, Any]:
    doc = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:test:alerts/db",
        "type": "test.alert",
        "data": {"host": "db1", "value": 97.5},
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def post(
    h: Harness, body: Any, content_type: str = STRUCTURED, token: str | None = TOKEN, **headers: str
) -> Any:
    all_headers = {"content-type": content_type, **headers}
    all_headers["authorization"] = f"Bearer {token}" if token else ""  # "" hides the client's default
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return h.client.post("/events", content=raw, headers=all_headers)


def test_structured_event_is_written_to_ingest_keyed_by_source_and_id(harness: Harness) -> None:
    response = post(harness, event())
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "id": "e-1", "source": "urn:test:alerts/db"}
    topic, message = harness.producer.records[-1]
    assert topic == topics.INGEST
    assert message.key == ingest_key("urn:test:alerts/db", "e-1").encode()
    assert harness.producer.events(topics.INGEST)[-1].data == {"host": "db1", "value": 97.5}


def test_binary_mode_reads_ce_headers_and_body_as_data(harness: Harness) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b-1",
        "ce-source": "urn:test:alerts/x",
        "ce-type": "test.alert",
    }
    headers["ce-correlationid"] = "chain-1"
    response = post(harness, {"host": "h", "value": 1}, "application/json", **headers)
    assert response.status_code == 202, response.text
    sent = harness.producer.events(topics.INGEST)[-1]
    assert sent.id == "b-1" and sent.extensions == {"correlationid": "chain-1"}
    assert sent.data == {"host": "h", "value": 1}


def test_batch_with_an_invalid_event_writes_nothing_and_answers_per_event(harness: Harness) -> None:
    before = len(harness.producer.records)
    body = [event(id="ok-1"), event(id="bad", data={"host": "h"}), event(id="ok-2")]
    response = post(harness, body, BATCH)
    assert response.status_code == 400
    result = response.json()
    assert (result["accepted"], result["rejected"], result["error"]) == (0, 3, "batch_refused")
    assert [r["status"] for r in result["results"]] == [424, 400, 424]
    assert result["results"][1]["problems"] == [
        {"field": "data", "pointer": "/", "message": "'value' is a required property"}
    ]
    assert len(harness.producer.records) == before  # nothing half-written


def test_fully_accepted_batch_is_202(harness: Harness) -> None:
    response = post(harness, [event(id="a"), event(id="b")], BATCH)
    assert response.status_code == 202
    assert response.json()["accepted"] == 2


def test_every_attribute_problem_is_listed_with_its_name(harness: Harness) -> None:
    response = post(harness, event(id="", specversion="0.3", time="yesterday", source="has space"))
    assert response.status_code == 400
    fields = {p["field"] for p in response.json()["problems"]}
    assert {"id", "specversion", "time", "source"} <= fields


def test_data_problems_carry_a_json_pointer(harness: Harness) -> None:
    response = post(harness, event(data={"host": 3, "value": 101}))
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert {(p["pointer"], p["message"]) for p in problems} == {
        ("/host", "3 is not of type 'string'"),
        ("/value", "101 is greater than the maximum of 100"),
    }


def test_unregistered_type_is_refused(harness: Harness) -> None:
    response = post(harness, event(type="test.unknown"))
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "type"
    assert "not registered" in response.json()["problems"][0]["message"]


def test_malformed_json_and_non_cloudevents_are_400(harness: Harness) -> None:
    assert post(harness, b"{nope").status_code == 400
    plain = post(harness, {"hello": 1}, "application/json")
    assert plain.status_code == 400 and plain.json()["problems"][0]["field"] == "specversion"


def test_oversized_event_is_413(harness: Harness) -> None:
    big = event(data={"host": "x" * (1024 * 1024 + 10), "value": 1})
    assert post(harness, big).status_code == 413


def test_missing_unknown_and_malformed_tokens_are_401_with_reasons(harness: Harness) -> None:
    missing = post(harness, event(), token=None)
    assert missing.status_code == 401 and "missing credentials" in missing.json()["message"]
    unknown = post(harness, event(), token="nope")
    assert unknown.status_code == 401 and "unknown" in unknown.json()["message"]
    malformed = harness.client.post("/events", content=b"{}", headers={"authorization": "Basic abc"})
    assert malformed.status_code == 401 and "Bearer" in malformed.json()["message"]


def test_source_outside_the_token_grant_is_403(harness: Harness) -> None:
    response = post(harness, event(source="urn:test:billing"))
    assert response.status_code == 403
    assert "urn:test:alerts/*" in response.json()["message"]
    assert not harness.producer.events(topics.INGEST)  # nothing written to ingest


def test_signed_sender_needs_a_valid_hmac_of_the_body(harness: Harness) -> None:
    body = json.dumps(event(source="urn:test:signed")).encode()
    unsigned = post(harness, body, token=OTHER_TOKEN)
    assert unsigned.status_code == 401 and "sign" in unsigned.json()["message"]
    stamp = {"x-whale-timestamp": str(int(time.time()))}
    wrong = post(harness, body, token=OTHER_TOKEN, **{"x-whale-signature": "sha256=00"}, **stamp)
    assert wrong.status_code == 401 and "does not match" in wrong.json()["message"]
    now = str(int(time.time()))
    signed = {"x-whale-signature": sign(SECRET.encode(), body, now), "x-whale-timestamp": now}
    good = post(harness, body, token=OTHER_TOKEN, **signed)
    assert good.status_code == 202, good.text


def test_signed_requests_need_a_timestamp_inside_the_replay_window(harness: Harness) -> None:
    body = json.dumps(event(source="urn:test:signed", id="replayed")).encode()
    no_time = post(harness, body, token=OTHER_TOKEN, **{"x-whale-signature": sign(SECRET.encode(), body, 1)})
    assert no_time.status_code == 401 and "X-Whale-Timestamp" in no_time.json()["message"]
    old = str(int(time.time()) - 301)
    stale = {"x-whale-signature": sign(SECRET.encode(), body, old), "x-whale-timestamp": old}
    refused = post(harness, body, token=OTHER_TOKEN, **stale)
    assert refused.status_code == 401 and "replay window" in refused.json()["message"]
    assert refused.json()["problems"][0]["field"] == "timestamp"
    now = str(int(time.time()))
    moved = {"x-whale-signature": sign(SECRET.encode(), body, old), "x-whale-timestamp": now}
    assert post(harness, body, token=OTHER_TOKEN, **moved).status_code == 401  # the time is signed too


def test_dev_mode_accepts_without_credentials(dev_harness: Harness) -> None:
    assert post(dev_harness, event(source="anything"), token=None).status_code == 202


def test_kafka_not_acknowledging_is_503_with_retry_after(harness: Harness) -> None:
    harness.producer.fail = True
    response = post(harness, event())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_saturated_producer_is_429(harness: Harness) -> None:
    harness.producer.saturated = True
    response = post(harness, event())
    assert response.status_code == 429 and "retry-after" in response.headers


def test_dataschema_selects_a_registered_version(harness: Harness) -> None:
    url = "http://127.0.0.1:8080/schemas/test.alert/versions/1"
    assert post(harness, event(dataschema=url)).status_code == 202
    missing = post(harness, event(dataschema=url[:-1] + "9"))
    assert missing.status_code == 400 and missing.json()["problems"][0]["field"] == "dataschema"


def test_the_contract_check_is_the_shared_one(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event center answers what whale.schemas.SchemaCheck finds, naming its field."""
    found = [{"field": "data.marker", "message": "found by the shared check"}]
    monkeypatch.setattr(SchemaCheck, "problems", lambda self, event: found)
    with capture_events(harness.producer) as written:
        response = post(harness, event(id="shared-1"))
    assert response.status_code == 400
    assert response.json()["problems"] == found
    assert "data.marker: found by the shared check" in response.json()["message"]
    assert written == []


def test_an_unregistered_type_and_a_bad_format_are_400_naming_the_field(harness: Harness) -> None:
    unknown = post(harness, event(id="u-1", type="test.unregistered"))
    assert unknown.status_code == 400
    assert unknown.json()["problems"][0]["field"] == "type"
    schema = {"type": "object", "properties": {"day": {"type": "string", "format": "date"}}}
    assert harness.client.put("/schemas/test.dated", json=schema).status_code == 200
    bad = post(harness, event(id="d-1", type="test.dated", data={"day": "2026-13-01"}))
    assert bad.status_code == 400
    assert bad.json()["problems"] == [
        {"field": "data.day", "pointer": "/day", "message": "'2026-13-01' is not a 'date'"}
    ]
