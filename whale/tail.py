"""Reading a topic from now on (or from its start) with no consumer group commits.

For taps in tests, benchmarks and tools that watch what services write. A topic created a moment
ago may not be in the metadata yet, or may have no leader yet, so the placement retries for up to
about 30 s before it gives up with a :class:`~whale.errors.WhaleError` naming the topic.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition

from whale.errors import WhaleError
from whale.settings import WhaleSettings


def tail_consumer(settings: WhaleSettings, topic: str, *, from_start: bool = False) -> Consumer:
    """A consumer assigned to every partition of ``topic`` at its current end (or its beginning)."""
    consumer = Consumer(
        {**settings.kafka_config(), "group.id": f"whale-tail-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    partitions = topic_partitions(consumer, topic)
    consumer.assign(
        [TopicPartition(topic, p, 0 if from_start else _end(consumer, topic, p)) for p in partitions]
    )
    return consumer


def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    """The partitions of ``topic``, waiting up to 30 s for a topic just created to have them."""
    for _ in range(60):
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return sorted(meta.partitions)
        time.sleep(0.5)
    raise WhaleError(f"topic {topic} has no partitions")


def _end(consumer: Consumer, topic: str, partition: int) -> int:
    for _ in range(60):
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1])
        except KafkaException:
            time.sleep(0.5)
    raise WhaleError(f"no leader for {topic}[{partition}]")
