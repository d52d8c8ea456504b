"""``POST /actions/{name}/run``: catalogued targets only, params checked against their schema, the
request written on the pool's topic as requested by the caller (and by whom it was relayed)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import actions_api

from tests.whale.test_authz import Book
from whale import topics
from whale.authz import ON_BEHALF_OF, Authenticator, Role, install
from whale.cloudevent import CloudEvent
from whale.testing import FakeProducer, FakeView
from whale.web.errors import install_error_handlers

CATALOG = {
    "actions": [
        {
            "name": "disk.clean",
            "params_schema": {
                "type": "object",
                "required": ["host"],
                "properties": {"host": {"type": "string"}, "keep_days": {"type": "integer"}},
                "additionalProperties": False,
            },
        }
    ],
    "workflows": [{"name": "both"}],
}


def client(*pools: str) -> tuple[TestClient, FakeProducer, dict[str, str]]:
    catalog = FakeView()
    for pool in pools:
        catalog.records[pool] = CloudEvent.create(type="whale.catalog", source="t", data=CATALOG)
    producer = FakeProducer()
    book = Book()
    tokens = {
        "op": book.issue(Role.operator, name="op"),
        "viewer": book.issue(Role.viewer, name="vic"),
        "chat": book.issue(Role.operator, name="chat", kind="service", grants=("delegate",)),
    }
    app = FastAPI()
    install_error_handlers(app)
    install(app, Authenticator(tokens=book), service="test")
    actions_api.install(app, producer, catalog)
    return TestClient(app), producer, tokens


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_an_operator_runs_a_catalogued_action_recorded_as_requested_by_them() -> None:
    http, producer, tokens = client("default")
    answer = http.post(
        "/actions/disk.clean/run", json={"params": {"host": "web-1"}}, headers=auth(tokens["op"])
    )
    assert answer.status_code == 202, answer.text
    topic, event, _ = producer.sent[-1]
    assert topic == topics.actions_topic("default")
    data = event.data
    assert data["target"] == {"kind": "action", "name": "disk.clean", "pool": "default"}
    assert data["params"] == {"host": "web-1"}
    assert data["requested_by"]["name"] == "op"
    assert answer.json()["run_id"].startswith("act-")


def test_params_breaking_the_schema_are_a_400_naming_the_field() -> None:
    http, producer, tokens = client("default")
    answer = http.post(
        "/actions/disk.clean/run",
        json={"params": {"host": "h", "keep_days": "x"}},
        headers=auth(tokens["op"]),
    )
    assert answer.status_code == 400
    assert answer.json()["problems"][0]["field"] == "params.keep_days"
    missing = http.post("/actions/disk.clean/run", json={"params": {}}, headers=auth(tokens["op"]))
    assert missing.status_code == 400 and "host" in missing.text
    assert producer.sent == []


def test_unknown_ambiguous_and_viewer_are_refused() -> None:
    http, _, tokens = client("a", "b")
    assert http.post("/actions/nope/run", json={}, headers=auth(tokens["op"])).status_code == 404
    ambiguous = http.post(
        "/actions/disk.clean/run", json={"params": {"host": "h"}}, headers=auth(tokens["op"])
    )
    assert ambiguous.status_code == 400 and ambiguous.json()["problems"][0]["field"] == "pool"
    body = {"params": {"host": "h"}, "pool": "b"}
    assert http.post("/actions/disk.clean/run", json=body, headers=auth(tokens["viewer"])).status_code == 403
    assert http.post("/actions/disk.clean/run", json=body, headers=auth(tokens["op"])).status_code == 202


def test_a_relay_acts_with_the_persons_role_and_both_are_recorded() -> None:
    http, producer, tokens = client("default")
    body = {"params": {"host": "h"}}
    as_vic = http.post(
        "/actions/disk.clean/run", json=body, headers=auth(tokens["chat"], **{ON_BEHALF_OF: "vic"})
    )
    assert as_vic.status_code == 403
    as_op = http.post(
        "/actions/disk.clean/run", json=body, headers=auth(tokens["chat"], **{ON_BEHALF_OF: "op"})
    )
    assert as_op.status_code == 202, as_op.text
    assert producer.sent[-1].event.data["requested_by"] == {
        "name": "op", "kind": "person", "role": "operator", "via": "token", "delegate": "chat"
    }  # fmt: skip
    borrowed = http.post(
        "/actions/disk.clean/run", json=body, headers=auth(tokens["op"], **{ON_BEHALF_OF: "vic"})
    )
    assert borrowed.status_code == 403


def test_an_unknown_cause_is_a_400() -> None:
    http, _, tokens = client("default")
    answer = http.post(
        "/actions/disk.clean/run", json={"params": {"host": "h"}, "cause": "nope"}, headers=auth(tokens["op"])
    )
    assert answer.status_code == 400 and answer.json()["problems"][0]["field"] == "cause"
