"""One subscription's delivery: its own consumer group (``<prefix>-<id>``) on its topics, on the
shared consume loop (:class:`whale.consumer.EventConsumer`: it decodes, dead-letters unreadable
messages with the subscription's id, and commits).

Per batch, messages are grouped by Kafka key; keys are delivered concurrently, the events of one key
strictly one after the other (a retrying event holds back the later events of its key only). The
batch is committed after every event was delivered, filtered out or dead-lettered; on shutdown
mid-batch nothing of it is committed (redelivered later: at-least-once). Pausing stops new
attempts and consumption without leaving the group. A worker is :attr:`Worker.ready` while its
consumer is subscribed and has joined its group (an assignment, possibly of no partition, since the
last revocation), or is paused.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from confluent_kafka import TopicPartition

from whale.binding import KafkaMessage
from whale.consumer import EventConsumer, Received
from whale.dead_letter import Stopping
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.rules.paths import event_context
from whale.settings import WhaleSettings
from whale.subscriptions import Subscription
from whale_dispatcher import metrics
from whale_dispatcher.delivery import deliver

log = structlog.get_logger(__name__)
MAX_KEYS_IN_PARALLEL = 32
LIBRDKAFKA_SESSION = {"session.timeout.ms": 45_000, "heartbeat.interval.ms": 3_000}  # librdkafka's defaults


@dataclass(slots=True)
class Status:
    """What ``GET /status`` shows for one subscription."""

    id: str
    endpoint: str
    paused: bool
    delivered: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    unreadable: int = 0
    retrying: int = 0
    last_delivered_at: str | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Worker:
    def __init__(
        self,
        settings: WhaleSettings,
        sub: Subscription,
        *,
        producer: EventProducer,
        client: httpx.AsyncClient,
        group_prefix: str = "whale-dispatcher",
        max_batch: int = 200,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._client = client
        self.group = f"{group_prefix}-{sub.id}"
        self._max_batch = max_batch
        self._stopping = asyncio.Event()
        self._resumed = asyncio.Event()
        self.sub = sub
        self._condition = sub.condition()
        self.status = Status(sub.id, sub.endpoint, sub.paused)
        self._consumer: EventConsumer | None = None  # the current run's (a new one for each run)
        self._joined = False  # in the group: assigned (possibly no partition) since the last revocation
        self.update(sub)

    @property
    def ready(self) -> bool:
        """Subscribed, and either joined to its consumer group or paused (a paused worker never polls,
        so it may not have joined yet)."""
        subscribed = self._consumer is not None and self._consumer.subscribed
        return subscribed and (self._joined or self.sub.paused)

    # ------------------------------------------------------------------ control
    def update(self, sub: Subscription) -> None:
        """Apply an edited subscription (filter, endpoint, retry policy, paused) from the next attempt."""
        if sub.topics != self.sub.topics:
            log.warning("subscription_topics_change_needs_restart", subscription=sub.id)
        self.sub = sub
        self._condition = sub.condition()
        self.status.endpoint = sub.endpoint
        self.status.paused = sub.paused
        metrics.PAUSED.labels(subscription=sub.id).set(1 if sub.paused else 0)
        if sub.paused:
            self._resumed.clear()
        else:
            self._resumed.set()

    def stop(self) -> None:
        self._stopping.set()
        self._resumed.set()
        if self._consumer is not None:
            self._consumer.stop()

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Deliver until :meth:`stop` (a crash leaves the group; run again for a fresh consumer)."""
        consumer = self._consumer = EventConsumer(
            self._settings,
            group_id=self.group,
            topics=list(self.sub.topics),
            producer=self._producer,
            batch_handler=self._process,
            max_batch=self._max_batch,
            max_attempts=None,  # a delivery retries by its own policy; an error here restarts the worker
            retryable=lambda exc: False,
            auto_offset_reset=self.sub.start,
            extra={
                "max.poll.interval.ms": 86_400_000,  # retries and pauses may hold a batch for long
                **LIBRDKAFKA_SESSION,
            },
            before_fetch=self._until_resumed,
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_unreadable=self._unreadable,
            dlq_headers=[("whale_dlq_subscription", self.sub.id.encode())],
        )
        try:
            await consumer.run()
        finally:
            self._joined = False

    async def _until_resumed(self) -> None:
        """Before each fetch: a paused worker polls nothing (it stays in its group)."""
        await self._resumed.wait()
        if self._stopping.is_set() and self._consumer is not None:
            self._consumer.stop()

    def _assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._joined = True  # called on the consume thread; an empty list still means joined

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._joined = False  # a rebalance is under way (or the assignment was lost)

    async def _wait_resumed(self) -> None:
        await self._resumed.wait()
        if self._stopping.is_set():
            raise Stopping

    async def _process(self, batch: list[Received]) -> None:
        by_key: OrderedDict[bytes | str, list[Received]] = OrderedDict()
        for item in batch:
            key = (
                item.message.key
                if item.message.key is not None
                else f"{item.topic}:{item.partition}:{item.offset}"
            )
            by_key.setdefault(key, []).append(item)
        room = asyncio.Semaphore(MAX_KEYS_IN_PARALLEL)

        async def one_key(items: list[Received]) -> None:
            async with room:
                for item in items:
                    await self._one(item)

        results = await asyncio.gather(*(one_key(items) for items in by_key.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _one(self, item: Received) -> None:
        event = item.event
        with bound_event(event):
            condition = self._condition
            dry = event.extensions.get("replaymode") == "dry"  # a dry-run replay is pushed nowhere
            if dry or (condition is not None and not condition.evaluate(event_context(event))):
                self.status.filtered += 1
                metrics.DELIVERIES.labels(subscription=self.sub.id, outcome="filtered").inc()
                return
            await self._deliver(item)

    async def _deliver(self, item: Received) -> None:
        assert self._consumer is not None  # delivering: the loop runs
        started = time.monotonic()
        self.status.retrying += 1
        try:
            outcome = await deliver(
                self._client,
                item.event,
                lambda: self.sub,
                wait_if_paused=self._wait_resumed,
                sleep=self._consumer.sleep,
            )
        finally:
            self.status.retrying -= 1
        metrics.DELIVERY_SECONDS.labels(subscription=self.sub.id).observe(time.monotonic() - started)
        if outcome.delivered:
            self.status.delivered += 1
            self.status.last_delivered_at = datetime.now(UTC).isoformat()
            metrics.DELIVERIES.labels(subscription=self.sub.id, outcome="delivered").inc()
            return
        self.status.last_error = outcome.reason
        self.status.dead_lettered += 1
        reason = f"push to subscription {self.sub.id} failed: {outcome.reason}"
        await self._consumer.dead_letter(item.message, item.topic, item.partition, item.offset, reason)
        metrics.DELIVERIES.labels(subscription=self.sub.id, outcome="dead_lettered").inc()
        log.warning("push_dead_lettered", subscription=self.sub.id, offset=item.offset, reason=reason)

    def _unreadable(self, message: KafkaMessage, reason: str) -> None:
        self.status.unreadable += 1
        metrics.DELIVERIES.labels(subscription=self.sub.id, outcome="unreadable").inc()
        log.warning("push_dead_lettered", subscription=self.sub.id, reason=reason)
