"""``whale run dedupe``: ``whale.ingest`` -> ``whale.events``, each (source, id) once per window.

The event center keys ``whale.ingest`` by source + id, so one key always lands on one partition and
one replica. The stage keeps a table key -> first-seen time (the ingest record's timestamp) per
partition, backed by a changelog topic (``whale.dedupe.changelog``: same partitions as the ingest
topic, ``compact,delete`` with a retention a little over the window). The table lives on disk in a
local store (:mod:`whale_dedupe.window`, under ``WHALE_STATE_DIR``); on assignment the
stage reads only the changelog records after the offsets its store applied (all of them for a new,
lost or foreign store), so the window survives restarts and rebalances across replicas.

The stage runs on the shared consume loop (:class:`whale.consumer.EventConsumer`: it decodes,
dead-letters unreadable messages, retries and commits). Per batch: forward the new events (binary
mode, the event's own partition key) all at once and wait for Kafka's acks together, then write
their changelog records and wait, then write them to the local store; the loop then commits the
ingest offsets. A failed write is retried (the batch is decided again; nothing was stored). A crash
before the commit replays the batch: an event is forwarded again at worst (at-least-once), never lost.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from whale.binding import KafkaMessage, to_binary
from whale.consumer import EventConsumer, Received
from whale.errors import DeliveryError, TopicError
from whale.health import start_health
from whale.logging import configure_logging
from whale.producer import EventProducer
from whale.runtime import run
from whale.store import Batch, LocalStore, contiguous, open_store
from whale_dedupe import metrics
from whale_dedupe.settings import Settings
from whale_dedupe.window import DedupeWindow

log = structlog.get_logger(__name__)
PURGE_EVERY = 60.0


@dataclass(slots=True)
class Decision:
    key: str
    partition: int
    stamp: int
    forward: KafkaMessage | None  # None: a duplicate


def ensure_changelog(settings: Settings) -> int:
    """Create the changelog like the ingest topic (same partition count); returns that count."""
    admin = AdminClient(settings.whale.kafka_config())
    meta = admin.list_topics(timeout=30).topics
    ingest = meta.get(settings.ingest_topic)
    if ingest is None or not ingest.partitions:
        raise TopicError(f"topic {settings.ingest_topic} does not exist (run `whale topics ensure`)")
    count = len(ingest.partitions)
    existing = meta.get(settings.changelog)
    if existing is not None and existing.partitions:
        if len(existing.partitions) != count:
            raise TopicError(
                f"{settings.changelog} has {len(existing.partitions)} partitions, "
                f"{settings.ingest_topic} has {count}"
            )
        return count
    retention = (settings.window + 3600) * 1000
    config = {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(retention),
        "min.compaction.lag.ms": "0",
    }
    futures = admin.create_topics([NewTopic(settings.changelog, count, -1, config=config)])
    for future in futures.values():
        try:
            future.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise TopicError(f"cannot create {settings.changelog}: {exc}") from None
    return count


class DedupeStage:
    def __init__(self, settings: Settings, producer: EventProducer, store: LocalStore | None = None) -> None:
        self._settings = settings
        self._producer = producer
        self._window_ms = settings.window * 1000
        self._store = store  # opened in run() when not given (its identity names the cluster)
        self._window: DedupeWindow | None = None if store is None else DedupeWindow(store, self._window_ms)
        self._next_purge = time.monotonic() + PURGE_EVERY
        self.assigned = threading.Event()  # set once partitions are assigned and restored
        base = settings.whale.kafka_config()
        self._consumer = EventConsumer(
            settings.whale,
            group_id=settings.group,
            topics=[settings.ingest_topic],
            producer=producer,
            batch_handler=self._process,
            max_batch=500,
            max_attempts=None,  # only failed writes are retried; any other error stops the stage
            retryable=lambda exc: isinstance(exc, DeliveryError),
            backoff_base=0.5,
            auto_offset_reset=settings.offset_reset,
            extra={"max.poll.interval.ms": 3_600_000},
            before_fetch=self._purge,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_unreadable=lambda message, reason: metrics.EVENTS.labels(outcome="unreadable").inc(),
            dlq_topic=settings.dlq_topic,
        )
        self._changelog = Producer(
            {**base, "acks": "all", "enable.idempotence": True, "linger.ms": 2, "client.id": "whale-dedupe"}
        )

    def stop(self) -> None:
        self._consumer.stop()

    @property
    def window(self) -> DedupeWindow:
        if self._window is None:
            raise RuntimeError("the dedupe store is opened by run()")
        return self._window

    @property
    def keys(self) -> int:
        return self.window.keys

    def _open_store(self) -> None:
        if self._window is not None:
            return
        cluster = self._consumer.consumer.list_topics(self._settings.changelog, timeout=30).cluster_id
        name = self._settings.changelog
        identity = {"stage": "dedupe", "topic": name, "cluster": cluster}
        self._store = open_store(f"dedupe-{name}", identity, self._settings.state)
        self._window = DedupeWindow(self._store, self._window_ms)

    async def run(self) -> None:
        await asyncio.to_thread(self._open_store)
        try:
            await self._consumer.run()
        finally:
            await asyncio.to_thread(self._changelog.flush, 10)
            if self._store is not None:
                self._store.close()

    # ------------------------------------------------------------------ table
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        wanted = [tp.partition for tp in partitions]
        started = time.monotonic()
        read = self.window.restore(self._settings.whale.kafka_config(), self._settings.changelog, wanted)
        log.info(
            "dedupe_assigned", partitions=wanted, restored=read, seconds=round(time.monotonic() - started, 3)
        )
        metrics.TABLE_SIZE.set(self.keys)
        self.assigned.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Nothing to drop: a revoked partition's keys stay on disk (the next owner writes the
        changelog; if this replica gets the partition back it reads what it missed)."""

    async def _purge(self) -> None:
        now = time.monotonic()
        if now < self._next_purge or self._window is None:
            return
        self._next_purge = now + PURGE_EVERY
        removed = self.window.purge(int(time.time() * 1000) - self._window_ms)
        if removed:
            log.info("dedupe_expired", keys=removed)
        metrics.TABLE_SIZE.set(self.keys)

    # ------------------------------------------------------------------ processing
    def _decide(self, batch: list[Received]) -> tuple[list[Decision], Batch]:
        """The decisions for a batch and the window's writes, staged (nothing stored yet)."""
        decisions: list[Decision] = []
        staged = self.window.store.batch()
        for item in batch:
            stamp = item.timestamp_ms or int(time.time() * 1000)
            event = item.event
            key = f"{event.source}\n{event.id}"
            seen = self.window.seen(staged, item.partition, key)
            if seen is not None and abs(stamp - seen) < self._window_ms:
                decisions.append(Decision(key, item.partition, stamp, None))
                continue
            self.window.remember(staged, item.partition, key, stamp)
            decisions.append(Decision(key, item.partition, stamp, to_binary(event)))
        return decisions, staged

    async def _process(self, batch: list[Received]) -> None:
        """Forward the batch's new events, record them, store the window; a failed write raises
        :class:`DeliveryError` with nothing stored (the loop retries: the batch is decided again)."""
        decisions, staged = self._decide(batch)
        forward = [d.forward for d in decisions if d.forward]
        await asyncio.gather(*(self._producer.send_message(self._settings.events_topic, m) for m in forward))
        written = await self._record([d for d in decisions if d.forward])
        store = self.window.store
        applied = {p: contiguous(store.offset(p), offsets) for p, offsets in written.items()}
        await asyncio.to_thread(store.commit, staged, applied)
        for d in decisions:
            metrics.EVENTS.labels(outcome="forwarded" if d.forward else "duplicate").inc()
        metrics.TABLE_SIZE.set(self.keys)

    async def _record(self, decisions: list[Decision]) -> dict[int, list[int]]:
        """Write the changelog records of ``decisions`` to their partitions and wait for every ack;
        returns the offsets they were written at, per partition."""
        errors: list[str] = []
        written: dict[int, list[int]] = {}

        def settle(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                written.setdefault(msg.partition(), []).append(msg.offset())

        for decision in decisions:
            self._changelog.produce(
                self._settings.changelog,
                key=decision.key.encode("utf-8"),
                value=str(decision.stamp).encode(),
                partition=decision.partition,
                on_delivery=settle,
            )
        remaining = await asyncio.to_thread(self._changelog.flush, self._settings.produce_timeout)
        if remaining or errors:
            raise DeliveryError(
                f"changelog write not acknowledged ({remaining} pending, errors: {errors[:3]})"
            )
        return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="whale run dedupe", description="whale.ingest -> whale.events, once per (source, id)"
    )
    parser.parse_args(argv or [])
    settings = Settings()
    configure_logging(settings.whale, service="dedupe")

    async def serve(stop: asyncio.Event) -> None:
        await asyncio.to_thread(ensure_changelog, settings)
        producer = EventProducer(settings.whale, client_id="whale-dedupe")
        stage = DedupeStage(settings, producer)
        health = await start_health(settings.host, settings.port, metrics.registry())
        task = asyncio.create_task(stage.run())
        log.info(
            "dedupe_started",
            window_seconds=settings.window,
            changelog=settings.changelog,
        )
        await stop.wait()
        stage.stop()
        await task
        if health is not None:
            health.close()
            await health.wait_closed()
        await asyncio.to_thread(producer.close, 10)

    return run(serve, settings.whale.event_loop)
