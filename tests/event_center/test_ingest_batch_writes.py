"""The events of a valid batch are sent together and acknowledged with one wait: what Kafka refuses or
does not acknowledge in time is answered per event (207, or 503 when none was written)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from whale_event_center import metrics

from whale import topics
from whale.binding import KafkaMessage
from whale.errors import DeliveryError
from whale.producer import Delivered

from .fakes import Harness, make_harness
from .test_ingest_api import BATCH, event, post


@pytest.fixture
def quick() -> Iterator[Harness]:
    yield from make_harness(produce_timeout=1.0)


def _refusing(harness: Harness, refused: set[bytes], hanging: frozenset[bytes] = frozenset()) -> None:
    """Kafka refuses the records whose key ends with one of ``refused``, never answers for ``hanging``."""
    original = harness.producer.send_message

    async def send_message(topic: str, message: KafkaMessage) -> Delivered:
        key = message.key or b""
        if any(key.endswith(k) for k in hanging):
            await asyncio.sleep(3600)
        if any(key.endswith(k) for k in refused):
            raise DeliveryError("broker refused (test)")
        return await original(topic, message)

    harness.producer.send_message = send_message  # type: ignore[method-assign]


def _accepted(type_: str) -> float:
    for family in metrics.REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == {"type": type_, "outcome": "accepted"}:
                return float(sample.value)
    return 0.0


def test_a_batch_kafka_partly_refuses_is_207_naming_each_event(harness: Harness) -> None:
    _refusing(harness, {b"\nb-2"})
    before = _accepted("test.alert")
    answer = post(harness, [event(id="b-1"), event(id="b-2"), event(id="b-3")], BATCH)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == [202, 503, 202]
    assert body["results"][1]["error"] == "unavailable" and body["results"][1]["retryable"] is True
    written = [e.id for e in harness.producer.events(topics.INGEST)]
    assert "b-1" in written and "b-3" in written and "b-2" not in written
    assert _accepted("test.alert") == before + 2


def test_a_batch_kafka_refuses_whole_is_503_with_retry_after(harness: Harness) -> None:
    harness.producer.fail = True
    answer = post(harness, [event(id="c-1"), event(id="c-2")], BATCH)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json()["error"] == "unavailable" and answer.json()["rejected"] == 2


def test_an_event_kafka_does_not_acknowledge_in_time_is_503_for_that_event_only(quick: Harness) -> None:
    _refusing(quick, set(), hanging=frozenset({b"\nd-2"}))
    answer = post(quick, [event(id="d-1"), event(id="d-2"), event(id="d-3")], BATCH)
    assert answer.status_code == 207, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [("d-1", 202), ("d-2", 503), ("d-3", 202)]


def test_the_events_of_a_batch_are_written_in_their_order(harness: Harness) -> None:
    ids = [f"o-{i}" for i in range(50)]
    assert post(harness, [event(id=i) for i in ids], BATCH).status_code == 202
    assert [e.id for e in harness.producer.events(topics.INGEST)][-50:] == ids
