"""The producer's size limit (413, never retried) and compression setting, without a broker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

import whale.producer as producer_module
from whale.binding import KafkaMessage
from whale.errors import DeliveryError, MessageTooLarge
from whale.producer import EventProducer, _delivery_error, record_size
from whale.settings import WhaleSettings


class CapturingProducer:
    confs: list[dict[str, Any]] = []

    def __init__(self, conf: dict[str, Any]) -> None:
        self.confs.append(conf)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> type[CapturingProducer]:
    CapturingProducer.confs = []
    monkeypatch.setattr(producer_module, "Producer", CapturingProducer)
    monkeypatch.setattr(producer_module, "topic_max_bytes", lambda settings, topic: 2_000_000)
    return CapturingProducer


def test_compression_and_record_limit_come_from_the_settings(offline: type[CapturingProducer]) -> None:
    settings = WhaleSettings(kafka_compression="gzip", kafka_message_max_bytes=500_000)
    producer = EventProducer(settings)
    try:
        assert offline.confs[-1]["compression.type"] == "gzip"
        assert offline.confs[-1]["message.max.bytes"] == 500_000
        assert producer.record_limit("t") == 500_000  # the smaller of producer and topic limits
    finally:
        producer.close()


def test_the_default_compression_is_one_every_client_reads(offline: type[CapturingProducer]) -> None:
    assert WhaleSettings().kafka_compression == "none"


async def test_a_record_over_the_limit_is_refused_before_producing(offline: type[CapturingProducer]) -> None:
    producer = EventProducer(WhaleSettings(kafka_message_max_bytes=10_000))
    try:
        with pytest.raises(MessageTooLarge) as err:
            await producer.send_message("t", KafkaMessage(b"k", b"x" * 10_000, ()))
        assert err.value.limit == 10_000 and not err.value.retryable
    finally:
        producer.close()


def test_kafka_size_errors_are_message_too_large_and_others_stay_delivery_errors() -> None:
    too_large = _delivery_error("t", KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), 1000)
    assert isinstance(too_large, MessageTooLarge) and not too_large.retryable
    other = _delivery_error("t", KafkaError(KafkaError._MSG_TIMED_OUT), 1000)
    assert type(other) is DeliveryError and other.retryable


def test_record_size_counts_key_value_and_headers() -> None:
    small = record_size(KafkaMessage(None, b"", ()))
    assert record_size(KafkaMessage(b"kk", b"vvv", (("h", b"x"),))) == small + 2 + 3 + 1 + 1 + 10
