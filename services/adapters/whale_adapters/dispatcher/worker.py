"""One subscription's delivery loop: its own consumer group (``<prefix>-<id>``) on its topics.

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
from confluent_kafka import Consumer, TopicPartition

from whale import topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.consumer import Stopping, commit_batch, dlq_message
from whale.errors import BindingError
from whale.logging import bound_event
from whale.producer import EventProducer
from whale.rules.paths import event_context
from whale.settings import WhaleSettings
from whale.subscriptions import Subscription
from whale_adapters.dispatcher import metrics
from whale_adapters.dispatcher.delivery import deliver

log = structlog.get_logger(__name__)
MAX_KEYS_IN_PARALLEL = 32


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
        self._subscribed = False  # a consumer exists and is subscribed (False again once it closed)
        self._joined = False  # in the group: assigned (possibly no partition) since the last revocation
        self.update(sub)

    @property
    def ready(self) -> bool:
        """Subscribed, and either joined to its consumer group or paused (a paused worker never polls,
        so it may not have joined yet)."""
        return self._subscribed and (self._joined or self.sub.paused)

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

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        consumer = Consumer(
            {
                **self._settings.kafka_config(),
                "group.id": self.group,
                "enable.auto.commit": False,
                "auto.offset.reset": self.sub.start,
                "enable.partition.eof": False,
                "max.poll.interval.ms": 86_400_000,  # retries and pauses may hold a batch for long
            }
        )
        try:
            await asyncio.to_thread(
                consumer.subscribe,
                list(self.sub.topics),
                on_assign=self._assigned,
                on_revoke=self._revoked,
            )
            self._subscribed = True
            while not self._stopping.is_set():
                await self._resumed.wait()
                if self._stopping.is_set():
                    break
                batch: list[Any] = await asyncio.to_thread(consumer.consume, self._max_batch, 0.5)
                messages = [m for m in batch if m.error() is None]
                if not messages:
                    continue
                try:
                    await self._process(messages)
                except Stopping:
                    break
                await asyncio.to_thread(commit_batch, consumer, messages, group=self.group)
        finally:
            self._subscribed = self._joined = False
            await asyncio.to_thread(consumer.close)

    def _assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._joined = True  # called on the consume thread; an empty list still means joined

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._joined = False  # a rebalance is under way (or the assignment was lost)

    async def _wait_resumed(self) -> None:
        await self._resumed.wait()
        if self._stopping.is_set():
            raise Stopping

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Stopping

    async def _process(self, messages: list[Any]) -> None:
        by_key: OrderedDict[bytes | str, list[Any]] = OrderedDict()
        for msg in messages:
            key = msg.key() if msg.key() is not None else f"{msg.topic()}:{msg.partition()}:{msg.offset()}"
            by_key.setdefault(key, []).append(msg)
        room = asyncio.Semaphore(MAX_KEYS_IN_PARALLEL)

        async def one_key(items: list[Any]) -> None:
            async with room:
                for msg in items:
                    await self._one(msg)

        results = await asyncio.gather(*(one_key(items) for items in by_key.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _one(self, msg: Any) -> None:
        plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
        try:
            event = from_kafka(plain)
        except BindingError as exc:
            self.status.unreadable += 1
            await self._dead_letter(plain, msg, f"unreadable: {exc}", outcome="unreadable")
            return
        with bound_event(event):
            condition = self._condition
            dry = event.extensions.get("replaymode") == "dry"  # a dry-run replay is pushed nowhere
            if dry or (condition is not None and not condition.evaluate(event_context(event))):
                self.status.filtered += 1
                metrics.DELIVERIES.labels(subscription=self.sub.id, outcome="filtered").inc()
                return
            await self._deliver(event, plain, msg)

    async def _deliver(self, event: CloudEvent, plain: KafkaMessage, msg: Any) -> None:
        started = time.monotonic()
        self.status.retrying += 1
        try:
            outcome = await deliver(
                self._client, event, lambda: self.sub, wait_if_paused=self._wait_resumed, sleep=self._sleep
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
        await self._dead_letter(plain, msg, f"push to subscription {self.sub.id} failed: {outcome.reason}")

    async def _dead_letter(
        self, plain: KafkaMessage, msg: Any, reason: str, *, outcome: str = "dead_lettered"
    ) -> None:
        copy = dlq_message(
            plain,
            reason=reason,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            group=self.group,
        )
        copy = KafkaMessage(
            copy.key, copy.value, (*copy.headers, ("whale_dlq_subscription", self.sub.id.encode()))
        )
        while True:
            try:
                await self._producer.send_message(topics.DLQ, copy)
                break
            except Exception as exc:  # the DLQ write must land too: retry until it does
                log.error("dlq_write_failed", subscription=self.sub.id, error=str(exc))
                await self._sleep(1.0)
        metrics.DELIVERIES.labels(subscription=self.sub.id, outcome=outcome).inc()
        log.warning("push_dead_lettered", subscription=self.sub.id, offset=msg.offset(), reason=reason)
