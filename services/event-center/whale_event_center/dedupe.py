"""``whale run dedupe``: ``whale.ingest`` -> ``whale.events``, each (source, id) once per window.

The event center keys ``whale.ingest`` by source + id, so one key always lands on one partition and
one replica. The stage keeps a table key -> first-seen time (the ingest record's timestamp) per
partition, backed by a changelog topic (``whale.dedupe.changelog``: same partitions as the ingest
topic, ``compact,delete`` with a retention a little over the window). On assignment it restores the
assigned partitions from the changelog, so the window survives restarts and rebalances across replicas.

Per batch: forward new events (binary mode, the event's own partition key) and wait for Kafka's
acks, then write their changelog records and wait, then commit the ingest offsets. A crash before
the commit replays the batch: an event is forwarded again at worst (at-least-once), never lost.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from whale.binding import KafkaMessage, from_kafka, headers_from, to_binary
from whale.consumer import commit_batch, dlq_message
from whale.errors import BindingError, DeliveryError, TopicError
from whale.logging import configure_logging
from whale.metrics import process_registry
from whale.producer import EventProducer
from whale.runtime import run
from whale_event_center import metrics
from whale_event_center.components import start_health
from whale_event_center.settings import Settings

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


def _watermarks(reader: Consumer, topic: str, partitions: list[int], attempts: int = 30) -> dict[int, int]:
    """High watermarks of the changelog partitions (retried: a new topic's metadata takes a moment)."""
    for attempt in range(attempts):
        try:
            return {
                p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
            }
        except KafkaException as exc:
            if attempt == attempts - 1:
                raise
            log.info("changelog_not_ready", topic=topic, error=str(exc))
            time.sleep(1.0)
    return {}


def ensure_changelog(settings: Settings) -> int:
    """Create the changelog like the ingest topic (same partition count); returns that count."""
    admin = AdminClient(settings.whale.kafka_config())
    meta = admin.list_topics(timeout=30).topics
    ingest = meta.get(settings.ingest_topic)
    if ingest is None or not ingest.partitions:
        raise TopicError(f"topic {settings.ingest_topic} does not exist (run `whale topics ensure`)")
    count = len(ingest.partitions)
    existing = meta.get(settings.dedupe_changelog)
    if existing is not None and existing.partitions:
        if len(existing.partitions) != count:
            raise TopicError(
                f"{settings.dedupe_changelog} has {len(existing.partitions)} partitions, "
                f"{settings.ingest_topic} has {count}"
            )
        return count
    retention = (settings.dedupe_window_seconds + 3600) * 1000
    config = {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(retention),
        "min.compaction.lag.ms": "0",
    }
    futures = admin.create_topics([NewTopic(settings.dedupe_changelog, count, -1, config=config)])
    for future in futures.values():
        try:
            future.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise TopicError(f"cannot create {settings.dedupe_changelog}: {exc}") from None
    return count


class DedupeStage:
    def __init__(self, settings: Settings, producer: EventProducer) -> None:
        self._settings = settings
        self._producer = producer
        self._window_ms = settings.dedupe_window_seconds * 1000
        self._table: dict[int, dict[str, int]] = {}
        self._stopping = asyncio.Event()
        self._next_purge = time.monotonic() + PURGE_EVERY
        self.assigned = threading.Event()  # set once partitions are assigned and restored
        base = settings.whale.kafka_config()
        self._consumer = Consumer(
            {
                **base,
                "group.id": settings.dedupe_group,
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
    def keys(self) -> int:
        return sum(len(t) for t in self._table.values())

    async def run(self) -> None:
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

    # ------------------------------------------------------------------ table
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        wanted = [tp.partition for tp in partitions]
        self._table = {p: self._table.get(p, {}) for p in wanted}
        self._restore([p for p in wanted])
        log.info("dedupe_assigned", partitions=wanted, keys=self.keys)
        self.assigned.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._table.pop(tp.partition, None)

    def _restore(self, partitions: list[int]) -> None:
        reader = Consumer(
            {
                **self._settings.whale.kafka_config(),
                "group.id": f"whale-dedupe-restore-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            name = self._settings.dedupe_changelog
            ends = _watermarks(reader, name, partitions)
            pending = {p for p, end in ends.items() if end > 0}
            reader.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
            oldest = int(time.time() * 1000) - self._window_ms
            fresh: dict[int, dict[str, int]] = {p: {} for p in partitions}
            while pending:
                msg: Any = reader.poll(1.0)
                if msg is None:
                    continue
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    continue
                table = fresh[msg.partition()]
                key = (msg.key() or b"").decode("utf-8", "replace")
                value = msg.value()
                if value is None:
                    table.pop(key, None)
                else:
                    stamp = int(value)
                    if stamp >= oldest:
                        table[key] = min(stamp, table.get(key, stamp))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    pending.discard(msg.partition())
            for p in partitions:
                self._table[p] = {**fresh[p], **self._table.get(p, {})}
        finally:
            reader.close()
        metrics.DEDUPE_TABLE_SIZE.set(self.keys)

    def _purge(self) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        oldest = int(time.time() * 1000) - self._window_ms
        for table in self._table.values():
            for key in [k for k, stamp in table.items() if stamp < oldest]:
                del table[key]
        metrics.DEDUPE_TABLE_SIZE.set(self.keys)

    # ------------------------------------------------------------------ processing
    def _decide(self, messages: list[Any]) -> tuple[list[Decision], list[tuple[int, str, int | None]]]:
        decisions: list[Decision] = []
        undo: list[tuple[int, str, int | None]] = []
        for msg in messages:
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
            stamp_type, stamp = msg.timestamp()
            stamp = stamp if stamp_type and stamp > 0 else int(time.time() * 1000)
            try:
                event = from_kafka(plain)
            except BindingError as exc:
                copy = dlq_message(
                    plain, reason=f"unreadable: {exc}", topic=msg.topic(), partition=msg.partition(),
                    offset=msg.offset(), group=self._settings.dedupe_group,
                )  # fmt: skip
                decisions.append(Decision(msg, "", msg.partition(), stamp, None, copy))
                continue
            key = f"{event.source}\n{event.id}"
            table = self._table.setdefault(msg.partition(), {})
            seen = table.get(key)
            if seen is not None and abs(stamp - seen) < self._window_ms:
                decisions.append(Decision(msg, key, msg.partition(), stamp, None))
                continue
            undo.append((msg.partition(), key, seen))
            table[key] = stamp
            decisions.append(Decision(msg, key, msg.partition(), stamp, to_binary(event)))
        return decisions, undo

    async def _process(self, messages: list[Any]) -> bool:
        delay = 0.5
        while True:
            decisions, undo = self._decide(messages)
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
                await self._record([d for d in decisions if d.forward])
                break
            except DeliveryError as exc:
                for partition, key, before in reversed(undo):
                    if before is None:
                        self._table.get(partition, {}).pop(key, None)
                    else:
                        self._table.setdefault(partition, {})[key] = before
                log.warning("dedupe_forward_failed", error=str(exc), retry_in=delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                    return False
                except TimeoutError:
                    delay = min(delay * 2, 10.0)
        for d in decisions:
            outcome = "forwarded" if d.forward else ("unreadable" if d.dead_letter else "duplicate")
            metrics.DEDUPE_EVENTS.labels(outcome=outcome).inc()
        metrics.DEDUPE_TABLE_SIZE.set(self.keys)
        return True

    async def _record(self, decisions: list[Decision]) -> None:
        """Write the changelog records of ``decisions`` to their partitions and wait for every ack."""
        errors: list[str] = []

        def settle(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for decision in decisions:
            self._changelog.produce(
                self._settings.dedupe_changelog,
                key=decision.key.encode("utf-8"),
                value=str(decision.stamp).encode(),
                partition=decision.partition,
                on_delivery=settle,
            )
        remaining = await asyncio.to_thread(self._changelog.flush, self._settings.produce_timeout_ms / 1000)
        if remaining or errors:
            raise DeliveryError(
                f"changelog write not acknowledged ({remaining} pending, errors: {errors[:3]})"
            )


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
        health = await start_health(
            settings.host, settings.dedupe_health_port, process_registry(metrics.DEDUPE)
        )
        task = asyncio.create_task(stage.run())
        log.info(
            "dedupe_started",
            window_seconds=settings.dedupe_window_seconds,
            changelog=settings.dedupe_changelog,
        )
        await stop.wait()
        stage.stop()
        await task
        if health is not None:
            health.close()
            await health.wait_closed()
        await asyncio.to_thread(producer.close, 10)

    return run(serve)
