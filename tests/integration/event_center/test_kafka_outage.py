"""The event center through a real Kafka outage and recovery, on a private single-node broker.

The broker is started for this test only, through ``whale.infra.stack`` on free ports with its own
data dir; the shared Elasticsearch is declared as the user's own cluster (``es_url`` set
explicitly), so ``up`` starts Kafka alone and ``down`` never touches Elasticsearch. The shared
Kafka on 127.0.0.1:9092 is never used here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from whale_event_center.settings import Settings

from tests.ports import free_port
from whale import topics
from whale.admin import ensure_topics
from whale.infra import elasticsearch as infra_es
from whale.infra import kafka as infra_kafka
from whale.infra import stack as infra_stack
from whale.infra.settings import InfraSettings
from whale.settings import WhaleSettings
from whale.testing import Tap

from .live import AppThread

pytestmark = pytest.mark.integration
STRUCTURED = {"content-type": "application/cloudevents+json"}
PATIENCE = 120.0  # seconds any state change may take on a slow machine


class PrivateKafka:
    """One KRaft broker of this test's own: ``start``/``stop`` are ``whale infra up``/``down`` for it."""

    def __init__(self, stack: WhaleSettings, data_dir: Path) -> None:
        # es_url set explicitly: Elasticsearch counts as the user's cluster, only checked, never started.
        self.owner = WhaleSettings(
            cache_dir=stack.cache_dir,  # the Kafka class path the session already fetched
            es_url=stack.es_url,
            es_username=stack.es_username,
            es_password=stack.es_password,
        )
        self.infra = InfraSettings(
            data_dir=data_dir,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            es_port=free_port(),
            es_transport_port=free_port(),
        )
        assert infra_stack.external_components(self.owner, self.infra) == {infra_es.NAME}, (
            "the private stack must start Kafka only (is WHALE_KAFKA_BOOTSTRAP set?)"
        )
        self.client = self.owner.model_copy(update={"kafka_bootstrap": self.infra.kafka_bootstrap()})

    def start(self) -> None:
        status = infra_stack.up(self.owner, self.infra)
        assert status.started == (infra_kafka.NAME,), status.describe()
        assert status.settings.kafka_bootstrap == self.client.kafka_bootstrap

    def stop(self) -> None:
        status = infra_stack.down(self.owner, self.infra, components=[infra_kafka.NAME])
        assert status[infra_es.NAME].state == infra_stack.EXTERNAL


def _wait_until_partitions_serve(settings: WhaleSettings) -> None:
    """Until the broker answers offset requests for every contract topic's partitions.

    Right after creation a partition can have a leader in the metadata while the broker still
    answers NOT_LEADER_FOR_PARTITION. The app must not meet that: ``CompactedFollower.start``
    keeps the error of a failed first read, so the registry would never load.
    """
    consumer = Consumer({**settings.kafka_config(), "group.id": f"test-probe-{uuid.uuid4().hex}"})
    deadline = time.monotonic() + PATIENCE
    try:
        for spec in topics.TOPICS:
            for partition in range(spec.partitions):
                while True:
                    try:
                        consumer.get_watermark_offsets(TopicPartition(spec.name, partition), timeout=5)
                        break
                    except KafkaException as exc:
                        assert time.monotonic() < deadline, f"{spec.name}[{partition}] does not serve: {exc}"
                        time.sleep(0.5)
    finally:
        consumer.close()


@pytest.fixture
def private_kafka(
    stack: WhaleSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PrivateKafka]:
    """A private broker with the contract's topics; stopped at the end whatever happened."""
    monkeypatch.delenv("WHALE_KAFKA_BOOTSTRAP", raising=False)
    broker = PrivateKafka(stack, tmp_path / "infra")
    try:
        broker.start()
        ensure_topics(broker.client)
        _wait_until_partitions_serve(broker.client)
        yield broker
    finally:
        broker.stop()


def _event(type_: str, source: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": source,
        "type": type_,
        "time": "2026-11-23T12:00:00Z",
        "data": {"host": "db1", "value": 97.5},
    }


def _post(http: httpx.Client, doc: dict[str, Any]) -> httpx.Response:
    return http.post("/events", content=json.dumps(doc).encode(), headers=STRUCTURED)


def _until(what: str, check: Callable[[], httpx.Response | None]) -> httpx.Response:
    """Call ``check`` until it returns a response (at most PATIENCE seconds)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        answer = check()
        if answer is not None:
            return answer
        assert time.monotonic() < deadline, f"{what} within {PATIENCE:.0f}s"
        time.sleep(0.5)


def _readyz(http: httpx.Client, status: int) -> Callable[[], httpx.Response | None]:
    def check() -> httpx.Response | None:
        response = http.get("/readyz")
        return response if response.status_code == status else None

    return check


@pytest.mark.timeout(900)
def test_kafka_outage_refuses_events_with_503_and_recovery_accepts_each_event_exactly_once(
    private_kafka: PrivateKafka,
) -> None:
    """Broker up: 202 and on whale.ingest. Broker stopped: 503 with Retry-After, /readyz 503.
    Broker restarted on the same data dir and ports: /readyz 200, the retried POST is 202, and
    whale.ingest holds both accepted events once each and never the refused one."""
    uid = uuid.uuid4().hex[:10]
    type_, source = f"test.ec.{uid}.alert", f"urn:test:ec:{uid}:monitor"
    settings = Settings(
        whale=private_kafka.client,
        port=free_port(),
        dev_mode=True,
        schemas_dir=None,
        index_prefix=f"test-ec-outage-{uid}",
        produce_timeout=3.0,
    )
    with AppThread(settings) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        app.wait_ready(PATIENCE)
        registered = http.put(f"/schemas/{type_}", json={"type": "object", "required": ["host"]})
        assert registered.status_code == 200, registered.text
        before = _event(type_, source)
        response = _post(http, before)
        assert response.status_code == 202, response.text
        tap = Tap(private_kafka.client, topics.INGEST, from_start=True)
        try:
            assert [e.id for e in tap.wait(lambda e: e.id == before["id"], timeout=PATIENCE)] == [
                before["id"]
            ]
        finally:
            tap.close()

        private_kafka.stop()
        refused = _event(type_, source)
        response = _post(http, refused)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == str(settings.retry_after)
        down = _until("/readyz did not turn 503 with Kafka stopped", _readyz(http, 503))
        assert down.json()["checks"]["kafka"] is False
        assert down.json()["checks"]["elasticsearch"] is True

        private_kafka.start()
        _until("/readyz did not return to 200 after Kafka restarted", _readyz(http, 200))
        after = _event(type_, source)

        def accepted() -> httpx.Response | None:  # the sender retries the same event on 503
            answer = _post(http, after)
            assert answer.status_code in (202, 503), answer.text
            return answer if answer.status_code == 202 else None

        _until("a POST was not accepted after Kafka restarted", accepted)

    tap = Tap(private_kafka.client, topics.INGEST, from_start=True)
    try:
        wanted = {before["id"], after["id"]}
        tap.wait(lambda e: e.id in wanted, count=2, timeout=PATIENCE)
        tap.poll(3.0)  # room for a late duplicate or a late refused event to show up
        on_topic = Counter(e.id for e, _ in tap.seen)
    finally:
        tap.close()
    assert on_topic == Counter({before["id"]: 1, after["id"]: 1})  # the topic is this test's alone
