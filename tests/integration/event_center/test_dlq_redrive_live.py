"""Redriving a dead letter on the real Kafka and Elasticsearch: listed by reason, redriven from the
CLI back through ingest to the events topic it came from (``redriveof`` set), once — a second redrive
is refused, and the same redrive sent again anyway (another replica racing) is dropped by dedupe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from whale_event_center.redrive import plan

from tests.ports import free_port
from whale.binding import to_binary
from whale.cloudevent import CloudEvent
from whale.dead_letter import dlq_message
from whale.es.documents import document
from whale.es.store import Store
from whale.producer import EventProducer
from whale.testing import Tap

from .live import AppThread, Pipeline, admin_token

pytestmark = pytest.mark.integration


@pytest.fixture
def tap_events(pipeline: Pipeline) -> Iterator[Tap]:
    tap = Tap(pipeline.stack, pipeline.events_topic)
    yield tap
    tap.close()


@pytest.fixture
def center(pipeline: Pipeline) -> Iterator[AppThread]:
    """An event center whose bus is the pipeline's events topic (where the dead letter came from),
    so a redrive goes back through the pipeline's ingest and dedupe."""
    settings = pipeline.settings.model_copy(
        update={"port": free_port(), "events_topic": pipeline.events_topic}
    )
    with AppThread(settings) as app:
        app.wait_ready()
        yield app


def index_dead_letter(pipeline: Pipeline, event: CloudEvent, reason: str) -> str:
    """A dead letter of ``event`` as a consumer of the events topic would write it, indexed as the
    indexer indexes ``whale.dlq`` (the suite's dlq topic is shared: this one is only in our index)."""
    message = dlq_message(
        to_binary(event), reason=reason, topic=pipeline.events_topic, partition=0, offset=7,
        group="test-consumer",
    )  # fmt: skip
    doc = document(message, topic=pipeline.dedupe_settings.dlq_topic, partition=0, offset=int(time.time()),
                   timestamp_ms=int(time.time() * 1000), dlq_topic=pipeline.dedupe_settings.dlq_topic)  # fmt: skip
    store = Store(pipeline.stack.es_url, pipeline.settings.index_prefix)

    async def write() -> None:
        try:
            await store.ensure_template()
            await store.bulk([(store.index_for(doc.when), doc.doc_id, doc.body)])
            await store.refresh()
        finally:
            await store.close()

    asyncio.run(write())
    return doc.doc_id


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHALE_EVENT_CENTER_URL": url, "WHALE_TOKEN": _admin["token"]}
    return subprocess.run(
        [sys.executable, "-m", "whale", *args], capture_output=True, text=True, timeout=120, env=env
    )


_admin: dict[str, str] = {}


def test_a_dead_letter_is_redriven_exactly_once(
    pipeline: Pipeline, center: AppThread, tap_events: Tap
) -> None:
    _admin["token"] = admin_token(pipeline.stack)
    tag = uuid.uuid4().hex[:8]
    event = CloudEvent.create(type=pipeline.type, source=f"{pipeline.source_prefix}dlq", subject=f"host-{tag}",
                              data={"host": f"host-{tag}", "value": 1}, correlationid=f"corr-{tag}")  # fmt: skip
    letter_id = index_dead_letter(pipeline, event, f"handler failed 3 times: boom-{tag}")
    listed = cli(center.url, "dlq", "list", "--reason", f"boom-{tag}")
    assert listed.returncode == 0 and letter_id in listed.stdout, listed.stdout + listed.stderr
    done = cli(center.url, "dlq", "redrive", letter_id)
    assert done.returncode == 0 and f"redriven to {pipeline.settings.ingest_topic}" in done.stdout, (
        done.stdout + done.stderr
    )
    again = cli(center.url, "dlq", "redrive", letter_id)
    assert again.returncode == 1 and "redriven already" in again.stdout
    by_reason = cli(center.url, "dlq", "redrive", "--reason", f"boom-{tag}")
    assert by_reason.returncode == 0 and "skipped" in by_reason.stdout, by_reason.stdout
    # another replica racing (before the redriven event is indexed) sends the same redrive again:
    with pipeline.client(center.url) as http:
        shown = http.get(f"/dlq/{letter_id}").json()
    step = plan(shown, ingest_topic=pipeline.settings.ingest_topic, events_topic=pipeline.events_topic)
    producer = EventProducer(pipeline.stack)
    producer.send_blocking(step.topic, to_binary(step.event, step.key))
    producer.close()

    def redriven(e: CloudEvent) -> bool:
        return e.extensions.get("redriveof") == letter_id

    (found,) = tap_events.wait(redriven, timeout=60)
    tap_events.poll(5.0)  # the racing copy would arrive by now: dedupe dropped it
    assert len([e for e, _ in tap_events.seen if redriven(e)]) == 1
    assert found.type == event.type and found.data == event.data and found.subject == event.subject
    assert found.extensions["correlationid"] == f"corr-{tag}" and found.id != event.id
