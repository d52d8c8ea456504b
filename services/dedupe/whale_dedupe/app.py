"""``whale run dedupe``: ``whale.ingest`` -> ``whale.events``, each (source, id) once per window.

The event center keys ``whale.ingest`` by source + id, so one key always lands on one partition and
one replica. The stage keeps a table key -> first-seen time (the ingest record's timestamp) per
partition, backed by a changelog topic (``whale.dedupe.changelog``: same partitions as the ingest
topic, ``compact,delete`` with a retention a little over the window). The table lives on disk in a
local store (:mod:`whale_dedupe.window`, under ``WHALE_STATE_DIR``); on assignment the
stage reads only the changelog records after the offsets its store applied (all of them for a new,
lost or foreign store), so the window survives restarts and rebalances across replicas.

Per batch: forward new events (binary mode, the event's own partition key) and wait for Kafka's
acks, then write their changelog records and wait, then write them to the local store, then commit
the ingest offsets. A crash before
the commit replays the batch: an event is forwarded again at worst (at-least-once), never lost.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from whale.binding import KafkaMessage, from_kafka, headers_from, to_binary
from whale.consumer import commit_batch, dlq_message
from whale.errors import BindingError, DeliveryError, TopicError
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
    msg: Any
    key: str
    partition: int
    stamp: int
    forward: KafkaMessage | None  # None: duplicate or dead-lettered
    dead_letter: KafkaMessage | None = None


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
        self._stopping = asyncio.Event()
        self._next_purge = time.monotonic() + PURGE_EVERY
        self.assigned = threading.Event()  # set once partitions are assigned and restored
        base = settings.whale.kafka_config()
        self._consumer = Consumer(
            {
                **base,
                "group.id": settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": settings.offset_reset,
                "session.timeout.ms": 10_000,
                "max.poll.interval.ms": 3_600_000,
            }
        )
        self._changelog = Producer(
            {**base, "acks": "all", "enable.idempotence": True, "linger.ms": 2, "client.id": "whale-dedupe"}
        )

    def stop(self) -> None:
        self._stopping.set()

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
        cluster = self._consumer.list_topics(self._settings.changelog, timeout=30).cluster_id
        name = self._settings.changelog
        identity = {"stage": "dedupe", "topic": name, "cluster": cluster}
        self._store = open_store(f"dedupe-{name}", identity, self._settings.state)
        self._window = DedupeWindow(self._store, self._window_ms)

    async def run(self) -> None:
        await asyncio.to_thread(self._open_store)
        self._consumer.subscribe(
            [self._settings.ingest_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not self._stopping.is_set():
                batch = await asyncio.to_thread(self._consumer.consume, 500, 0.5)
                self._purge()
                messages = [m for m in batch if m.error() is None]
                if not messages:
                    continue
                if not await self._process(messages):
                    break
                await asyncio.to_thread(commit_batch, self._consumer, messages, stage="dedupe")
        finally:
            await asyncio.to_thread(self._consumer.close)
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

    def _purge(self) -> None:
        now = time.monotonic()
        if now < self._next_purge or self._window is None:
            return
        self._next_purge = now + PURGE_EVERY
        removed = self.window.purge(int(time.time() * 1000) - self._window_ms)
        if removed:
            log.info("dedupe_expired", keys=removed)
        metrics.TABLE_SIZE.set(self.keys)

    # ------------------------------------------------------------------ processing
    def _decide(self, messages: list[Any]) -> tuple[list[Decision], Batch]:
        """The decisions for a batch and the window's writes, staged (nothing stored yet)."""
        decisions: list[Decision] = []
        staged = self.window.store.batch()
        for msg in messages:
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
            stamp_type, stamp = msg.timestamp()
            stamp = stamp if stamp_type and stamp > 0 else int(time.time() * 1000)
            try:
                event = from_kafka(plain)
            except BindingError as exc:
                copy = dlq_message(
                    plain, reason=f"unreadable: {exc}", topic=msg.topic(), partition=msg.partition(),
                    offset=msg.offset(), group=self._settings.group,
                )  # fmt: skip
                decisions.append(Decision(msg, "", msg.partition(), stamp, None, copy))
                continue
            key = f"{event.source}\n{event.id}"
            seen = self.window.seen(staged, msg.partition(), key)
            if seen is not None and abs(stamp - seen) < self._window_ms:
                decisions.append(Decision(msg, key, msg.partition(), stamp, None))
                continue
            self.window.remember(staged, msg.partition(), key, stamp)
            decisions.append(Decision(msg, key, msg.partition(), stamp, to_binary(event)))
        return decisions, staged

    async def _process(self, messages: list[Any]) -> bool:
        delay = 0.5
        while True:
            decisions, staged = self._decide(messages)
            try:
                await asyncio.gather(
                    *(
                        self._producer.send_message(self._settings.events_topic, d.forward)
                        for d in decisions
                        if d.forward
                    ),
                    *(
                        self._producer.send_message(self._settings.dlq_topic, d.dead_letter)
                        for d in decisions
                        if d.dead_letter
                    ),
                )
                written = await self._record([d for d in decisions if d.forward])
                break
            except DeliveryError as exc:  # nothing was stored: the retry decides again
                log.warning("dedupe_forward_failed", error=str(exc), retry_in=delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                    return False
                except TimeoutError:
                    delay = min(delay * 2, 10.0)
        store = self.window.store
        applied = {p: contiguous(store.offset(p), offsets) for p, offsets in written.items()}
        await asyncio.to_thread(store.commit, staged, applied)
        for d in decisions:
            outcome = "forwarded" if d.forward else ("unreadable" if d.dead_letter else "duplicate")
            metrics.EVENTS.labels(outcome=outcome).inc()
        metrics.TABLE_SIZE.set(self.keys)
        return True

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

    return run(serve)
