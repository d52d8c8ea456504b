"""Where a brand-new consumer group starts on ``whale.events``.

The Faust app resets to ``earliest`` so its internal repartition topic never loses a trigger; for
``whale.events`` itself a new group should usually start at the end (a new deployment must not
replay a week of alerts into actions). Before the worker starts, partitions of ``whale.events``
that the group has never committed are committed at their current end (``latest``) or left to the
reset (``earliest``). Partitions the group already committed are never touched.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from whale.errors import WhaleError
from whale.settings import WhaleSettings


def seed_offsets(
    settings: WhaleSettings, *, group: str, topic: str, reset: str, timeout: float = 30.0
) -> int:
    """Commit the end offset of every uncommitted partition when ``reset`` is latest; returns how many."""
    if reset != "latest":
        return 0
    conf: dict[str, Any] = {**settings.kafka_config(), "group.id": group, "enable.auto.commit": False}
    consumer = Consumer(conf)
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise WhaleError(f"topic {topic} does not exist (run `whale topics ensure`)")
        partitions = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = consumer.committed(partitions, timeout=timeout)
        fresh = [tp for tp in committed if tp.offset < 0]
        if not fresh:
            return 0
        seeds = [
            TopicPartition(topic, tp.partition, consumer.get_watermark_offsets(tp, timeout=timeout)[1])
            for tp in fresh
        ]
        consumer.commit(offsets=seeds, asynchronous=False)
        return len(seeds)
    except KafkaException as exc:
        raise WhaleError(f"cannot position consumer group {group} on {topic}: {exc}") from None
    finally:
        consumer.close()
