"""Schema hygiene: deprecate a type (events accepted with a warning), delete it once no event is kept."""

from __future__ import annotations

from .fakes import Harness
from .test_ingest_api import event, post


def test_a_deprecated_type_is_listed_and_its_events_warn(harness: Harness) -> None:
    response = harness.client.post("/schemas/test.alert/deprecate", json={"reason": "use test.alert2"})
    assert response.status_code == 200, response.text
    assert response.json()["deprecated"]["reason"] == "use test.alert2"
    listed = {t["type"]: t for t in harness.client.get("/schemas").json()["types"]}
    assert listed["test.alert"]["deprecated"]["reason"] == "use test.alert2"
    accepted = post(harness, event())
    assert accepted.status_code == 202
    assert accepted.json()["warnings"] == [
        {"field": "type", "message": "event type 'test.alert' is deprecated: use test.alert2"}
    ]


def test_delete_needs_deprecation_first_and_no_events_in_retention(harness: Harness) -> None:
    refused = harness.client.delete("/schemas/test.alert")
    assert refused.status_code == 409 and "deprecate" in refused.json()["message"]
    assert harness.client.post("/schemas/test.alert/deprecate").status_code == 200
    harness.store.stored = 3
    kept = harness.client.delete("/schemas/test.alert")
    assert kept.status_code == 409 and "3 event(s)" in kept.json()["message"]
    assert harness.store.queries[-1] == {"term": {"type": "test.alert"}}
    harness.store.stored = 0
    assert harness.client.delete("/schemas/test.alert").status_code == 204
    assert harness.client.get("/schemas/test.alert").status_code == 404
    assert post(harness, event()).status_code == 400  # no longer registered


def test_unknown_types_are_404(harness: Harness) -> None:
    assert harness.client.post("/schemas/nope/deprecate").status_code == 404
    assert harness.client.delete("/schemas/nope").status_code == 404


def test_a_new_version_revives_a_deprecated_type(harness: Harness) -> None:
    harness.client.post("/schemas/test.alert/deprecate")
    schema = harness.client.get("/schemas/test.alert").json()["versions"][-1]["schema"]
    schema["properties"]["extra"] = {"type": "string"}
    assert harness.client.put("/schemas/test.alert", json=schema).status_code == 200
    assert "warnings" not in post(harness, event()).json()
