"""Dead letters: the copy of a message that cannot be handled, written to ``whale.dlq`` with its
reason and origin, and the shutdown that interrupts a consumer's batch while it retries one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from whale.binding import KafkaMessage
from whale.producer import EventProducer
from whale.topics import DLQ

if TYPE_CHECKING:
    from whale.consumer import Received

log = structlog.get_logger(__name__)


class Stopping(Exception):
    """Raised inside the consumer when shutdown interrupts a batch: nothing of it is committed, or,
    when ``unhandled`` names one of its messages, the messages fetched before that one."""

    def __init__(self, unhandled: Received | None = None) -> None:
        super().__init__()
        self.unhandled = unhandled


def dlq_message(
    message: KafkaMessage, *, reason: str, topic: str, partition: int, offset: int, group: str
) -> KafkaMessage:
    """The dead-letter copy of ``message``: same key, value and headers plus reason and origin."""
    extra = (
        ("whale_dlq_reason", reason.encode("utf-8")[:4096]),
        ("whale_dlq_topic", topic.encode()),
        ("whale_dlq_partition", str(partition).encode()),
        ("whale_dlq_offset", str(offset).encode()),
        ("whale_dlq_group", group.encode()),
    )
    return KafkaMessage(message.key, message.value, message.headers + extra)


async def write_dead_letter(
    producer: EventProducer,
    message: KafkaMessage,
    *,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    headers: Sequence[tuple[str, bytes]] = (),
    stopping: asyncio.Event | None = None,
    dlq_topic: str = DLQ,
) -> None:
    """Write the dead-letter copy of ``message`` (plus ``headers``) to ``whale.dlq``, retrying every
    second until Kafka acknowledges it: a dead letter is never lost. Raises :class:`Stopping` when
    ``stopping`` is set while it retries."""
    copy = dlq_message(message, reason=reason, topic=topic, partition=partition, offset=offset, group=group)
    if headers:
        copy = KafkaMessage(copy.key, copy.value, (*copy.headers, *headers))
    while True:
        try:
            await producer.send_message(dlq_topic, copy)
        except Exception as exc:  # retried: an unacknowledged dead letter would be a lost event
            log.error("dlq_write_failed", error=str(exc), topic=topic, offset=offset, group=group)
            if stopping is not None and stopping.is_set():
                raise Stopping from None
            await asyncio.sleep(1.0)
        else:
            log.warning(
                "dead_lettered", group=group, topic=topic, partition=partition, offset=offset, reason=reason
            )
            return
