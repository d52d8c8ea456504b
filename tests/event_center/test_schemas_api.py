"""The /schemas API: versions, compatibility refusals, force, listing."""

from __future__ import annotations

import copy

from whale import topics

from .fakes import ALERT_SCHEMA, Harness, stored


def test_compatible_change_adds_a_version_on_the_compacted_topic(harness: Harness) -> None:
    newer = copy.deepcopy(ALERT_SCHEMA)
    newer["properties"]["region"] = {"type": "string"}
    response = harness.client.put("/schemas/test.alert", json=newer)
    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["created"] is True
    topic, message = stored(harness.producer)[-1]
    assert topic == topics.SCHEMAS and message.key == b"test.alert"
    versions = harness.client.get("/schemas/test.alert").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert harness.client.get("/schemas/test.alert/versions/2").json()["schema"] == newer


def test_identical_schema_is_not_a_new_version(harness: Harness) -> None:
    response = harness.client.put("/schemas/test.alert", json=ALERT_SCHEMA)
    assert response.json() == {**response.json(), "version": 1, "created": False}


def test_incompatible_change_is_refused_with_every_break(harness: Harness) -> None:
    newer = copy.deepcopy(ALERT_SCHEMA)
    newer["required"].append("region")
    newer["properties"]["value"] = {"type": "integer"}
    response = harness.client.put("/schemas/test.alert", json=newer)
    assert response.status_code == 409
    rules = {(p["field"], p["rule"]) for p in response.json()["problems"]}
    assert rules == {("/properties/region", "new_required"), ("/properties/value", "narrowed_type")}
    forced = harness.client.put("/schemas/test.alert?force=true", json=newer)
    assert forced.status_code == 200 and forced.json()["version"] == 2


def test_invalid_json_schema_is_400(harness: Harness) -> None:
    response = harness.client.put("/schemas/test.bad", json={"type": "nonsense"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_schema"


def test_unknown_type_and_version_are_404(harness: Harness) -> None:
    assert harness.client.get("/schemas/nope").status_code == 404
    assert harness.client.get("/schemas/test.alert/versions/7").status_code == 404


def test_list_shows_types_and_versions(harness: Harness) -> None:
    assert harness.client.get("/schemas").json() == {
        "types": [{"type": "test.alert", "latest": 1, "versions": [1]}]
    }


def test_registry_records_follow_the_published_record_schema(harness: Harness) -> None:
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    path = Path(__file__).resolve().parents[2] / "schemas" / "events" / "whale.schema.registered.json"
    record = harness.schemas.get("test.alert")
    assert record is not None and record.type == "whale.schema.registered"
    Draft202012Validator(json.loads(path.read_text())).validate(record.data)


def test_kafka_not_acknowledging_a_schema_is_503(harness: Harness) -> None:
    harness.producer.fail = True
    response = harness.client.put("/schemas/test.other", json={"type": "object"})
    assert response.status_code == 503 and "retry-after" in response.headers
