"""The /subscriptions router: list, save (validated with the shared model, filter included), read,
pause/resume and delete, with the records ``whale subscriptions apply`` writes (fakes for Kafka)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from whale_event_center import subscriptions_api
from whale_event_center.app import create_app
from whale_event_center.components import Components
from whale_event_center.settings import Settings

from whale import authz, topics
from whale.binding import from_kafka
from whale.subscriptions import RECORD_TYPE, Subscription, from_record
from whale.testing import FakeProducer, FakeView
from whale.web.errors import install_error_handlers

from .fakes import FakeStore, stored


@pytest.fixture
def env() -> tuple[TestClient, FakeProducer, FakeView]:
    view = FakeView()
    producer = FakeProducer(views={topics.SUBSCRIPTIONS: view})
    app = FastAPI()
    install_error_handlers(app)

    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    subscriptions_api.install(app, producer, view)  # type: ignore[arg-type]
    return TestClient(app), producer, view


SUB = {
    "endpoint": "https://pager.example.com/hooks/whale",
    "filter": {"all": [{"field": "type", "prefix": "prometheus.alert."}]},
    "max_attempts": 3,
}


def test_put_writes_the_shared_record_and_list_get_show_it(
    env: tuple[TestClient, FakeProducer, FakeView],
) -> None:
    """PUT validates, writes a whale.subscription.saved record keyed by id on whale.subscriptions (201,
    then 200 on replace), and GET / list answer the stored state."""
    client, producer, _ = env
    assert client.get("/subscriptions").json() == {"subscriptions": []}
    r = client.put("/subscriptions/ops-pager", json=SUB)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "ops-pager" and r.json()["max_attempts"] == 3 and r.json()["paused"] is False
    topic, message = stored(producer)[-1]
    assert topic == topics.SUBSCRIPTIONS and message.key == b"ops-pager"
    record = from_kafka(message)
    assert record.type == RECORD_TYPE
    assert from_record(record) == Subscription.model_validate({**SUB, "id": "ops-pager"})
    assert client.get("/subscriptions/ops-pager").json() == r.json()
    assert client.get("/subscriptions").json() == {"subscriptions": [r.json()]}
    again = client.put("/subscriptions/ops-pager", json={**SUB, "max_attempts": 5})
    assert again.status_code == 200 and client.get("/subscriptions/ops-pager").json()["max_attempts"] == 5


def test_pause_and_resume_rewrite_the_record(env: tuple[TestClient, FakeProducer, FakeView]) -> None:
    """pause / resume keep everything else and flip ``paused``; unknown names are 404."""
    client, _, view = env
    client.put("/subscriptions/ops-pager", json=SUB)
    r = client.post("/subscriptions/ops-pager/pause")
    assert r.status_code == 200 and r.json()["paused"] is True and r.json()["max_attempts"] == 3
    assert from_record(view.items()["ops-pager"]).paused is True
    assert client.post("/subscriptions/ops-pager/resume").json()["paused"] is False
    assert client.post("/subscriptions/nope/pause").status_code == 404


def test_delete_writes_a_tombstone_and_unknown_is_404(env: tuple[TestClient, FakeProducer, FakeView]) -> None:
    client, producer, _ = env
    client.put("/subscriptions/ops-pager", json=SUB)
    assert client.delete("/subscriptions/ops-pager").status_code == 204
    topic, message = stored(producer)[-1]
    assert topic == topics.SUBSCRIPTIONS and message.key == b"ops-pager" and message.value is None
    assert client.get("/subscriptions/ops-pager").status_code == 404
    r = client.delete("/subscriptions/ops-pager")
    assert r.status_code == 404 and r.json()["problems"][0]["field"] == "name"


def test_invalid_filter_is_refused_with_the_field(env: tuple[TestClient, FakeProducer, FakeView]) -> None:
    """A filter that breaks the matching language is a 400 naming filter...; nothing is written."""
    client, producer, _ = env
    r = client.put("/subscriptions/bad", json={**SUB, "filter": {"field": "type", "frobnicate": 1}})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_subscription"
    assert body["problems"][0]["field"].startswith("filter")
    assert producer.records == []


def test_invalid_fields_are_each_named(env: tuple[TestClient, FakeProducer, FakeView]) -> None:
    """Bad endpoint, out-of-range limits, unknown keys and a mismatched id each name their field."""
    client, producer, _ = env
    r = client.put(
        "/subscriptions/bad",
        json={"endpoint": "ftp://x", "max_attempts": 0, "colour": "red"},
    )
    assert r.status_code == 400
    fields = {p["field"] for p in r.json()["problems"]}
    assert {"endpoint", "max_attempts", "colour"} <= fields
    r = client.put("/subscriptions/bad", json={**SUB, "id": "other"})
    assert r.status_code == 400 and r.json()["problems"] == [
        {"field": "id", "message": "the body's id 'other' differs from the path's 'bad'"}
    ]
    assert client.put("/subscriptions/Bad Name", json=SUB).json()["problems"][0]["field"] == "id"
    assert producer.records == []


def test_the_event_center_app_serves_subscriptions_from_its_view() -> None:
    """create_app mounts /subscriptions on the Components' subscriptions view and writes to Kafka."""

    async def ready() -> bool:
        return True

    subs = FakeView(waits=False)
    producer = FakeProducer()
    parts = Components(
        producer=producer, schemas=FakeView(waits=False), rules=FakeView(waits=False),
        catalog=FakeView(waits=False), store=FakeStore(),
        tokens=None, kafka_ready=ready, subscriptions=subs,
    )  # fmt: skip
    with TestClient(create_app(Settings(schemas_dir=None, dev_mode=True), parts)) as client:
        assert client.put("/subscriptions/ops-pager", json=SUB).status_code == 201
        assert [m.key for t, m in producer.records if t == topics.SUBSCRIPTIONS] == [b"ops-pager"]
        assert client.get("/subscriptions").json() == {"subscriptions": []}  # this fake view is not fed
