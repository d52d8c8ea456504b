"""Committing a handled batch's offsets, for the event center's own consumers (dedupe, indexer)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition


def commit_batch(consumer: Any, messages: list[Any], log: Any) -> None:
    """Commit, synchronously, the offset after the last message of each partition in ``messages``.

    A failed commit (the partitions were rebalanced away) is logged as ``commit_failed`` on ``log``
    and not raised: the partitions' new owner reads those messages again (at-least-once), which
    both consumers tolerate (dedupe may forward an event twice, the indexer rewrites the same ids).
    """
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        last[(m.topic(), m.partition())] = max(m.offset(), last.get((m.topic(), m.partition()), -1))
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
        )
    except Exception as exc:
        log.warning("commit_failed", error=str(exc))
