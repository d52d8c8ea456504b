"""``whale run indexer``: every bus topic into Elasticsearch, at least once and idempotently.

Reads ``whale.events``, ``whale.actions`` and every pool topic (``^whale\\.actions.*``),
``whale.results`` and ``whale.dlq`` in its own consumer group. Each batch is bulk-indexed and its
offsets are committed only after Elasticsearch acknowledged every document; while Elasticsearch is
down the indexer retries the same batch with backoff (nothing is skipped) and then catches up.

It reads raw messages rather than through :class:`whale.consumer.EventConsumer`, because that
consumer dead-letters unreadable messages, which would loop forever for messages of ``whale.dlq``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError

from whale.binding import KafkaMessage, headers_from
from whale.consumer import commit_batch
from whale.es.documents import Document, document
from whale.es.store import Store, StoreUnavailable
from whale.health import start_health
from whale.logging import configure_logging
from whale.runtime import run
from whale_indexer import metrics
from whale_indexer.settings import Settings

log = structlog.get_logger(__name__)
RETENTION_EVERY = 3600.0


class Indexer:
    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._stopping = asyncio.Event()
        conf: dict[str, Any] = {
            **settings.whale.kafka_config(),
            "group.id": settings.group,
            "enable.auto.commit": False,
            "auto.offset.reset": settings.offset_reset,
            "topic.metadata.refresh.interval.ms": 10_000,
            "session.timeout.ms": 10_000,
            "max.poll.interval.ms": 3_600_000,  # an Elasticsearch outage pauses polling
        }
        self._consumer = Consumer(conf)
        self._next_retention = 0.0
        self._template_ready = False

        self.assigned = threading.Event()  # set once partitions are assigned (tests wait for it)

    def stop(self) -> None:
        self._stopping.set()

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assigned.set()

    async def run(self) -> None:
        self._consumer.subscribe(list(self._settings.topics), on_assign=self._on_assign)
        try:
            while not self._stopping.is_set():
                await self._maybe_expire()
                batch: list[Any] = await asyncio.to_thread(self._consumer.consume, self._settings.batch, 0.5)
                messages = [m for m in batch if m.error() is None]
                for m in batch:
                    err = m.error()
                    if err is None:
                        continue
                    if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:  # a matched pool topic was deleted
                        log.debug("kafka_topic_gone", error=err.str())
                    else:
                        log.warning("kafka_consume_error", error=err.str())
                if not messages:
                    continue
                docs = [_to_document(m, self._settings.dlq_topic) for m in messages]
                if not await self._with_retry(self.index, docs, [m.topic() for m in messages]):
                    break  # stopping: nothing committed, the next owner re-reads
                newest = max((m.timestamp()[1] for m in messages), default=0)
                if newest > 0:
                    metrics.LAG_SECONDS.set(max(0.0, time.time() - newest / 1000))
                await asyncio.to_thread(commit_batch, self._consumer, messages, stage="indexer")
        finally:
            await asyncio.to_thread(self._consumer.close)

    async def index(self, docs: list[Document], topic_names: list[str]) -> None:
        """Bulk-index ``docs``; raise :class:`StoreUnavailable` unless every one was stored."""
        if not self._template_ready:
            await self._store.ensure_template()
            self._template_ready = True
        started = time.perf_counter()
        results = await self._store.bulk([(self._store.index_for(d.when), d.doc_id, d.body) for d in docs])
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        retry: list[str] = []
        for doc, topic, (status, error) in zip(docs, topic_names, results, strict=False):
            if status < 300:
                metrics.INDEXED.labels(topic=topic, outcome="indexed").inc()
            elif status in (429,) or status >= 500:
                retry.append(doc.doc_id)
            else:  # the document itself is refused: store it without the parts that failed
                metrics.INDEXED.labels(topic=topic, outcome="failed").inc()
                log.error("document_refused", doc_id=doc.doc_id, status=status, error=error)
                slim = {k: v for k, v in doc.body.items() if k not in ("data", "data_text", "extensions")}
                slim["index_error"] = error
                await self._store.bulk([(self._store.index_for(doc.when), doc.doc_id, slim)])
        if len(results) < len(docs) or retry:
            raise StoreUnavailable(
                f"Elasticsearch did not store {len(retry) or len(docs)} document(s); retrying"
            )

    async def _with_retry(self, fn: Any, *args: Any) -> bool:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await fn(*args)
                return True
            except StoreUnavailable as exc:
                log.warning("elasticsearch_unavailable", error=str(exc), retry_in=delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, 15.0)
        return False

    async def _maybe_expire(self) -> None:
        now = time.monotonic()
        if now < self._next_retention:
            return
        self._next_retention = now + RETENTION_EVERY
        try:
            removed = await self._store.expire(self._settings.retention_days)
            if removed:
                log.info("indices_expired", indices=removed)
        except StoreUnavailable as exc:
            log.warning("retention_failed", error=str(exc))


def _to_document(msg: Any, dlq_topic: str) -> Document:
    plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
    stamp_type, stamp = msg.timestamp()
    return document(
        plain,
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        timestamp_ms=stamp if stamp_type else None,
        dlq_topic=dlq_topic,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="whale run indexer", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.parse_args(argv or [])
    settings = Settings()
    configure_logging(settings.whale, service="indexer")

    async def serve(stop: asyncio.Event) -> None:
        store = Store(settings.whale.es_url, settings.index_prefix, auth=_es_auth(settings))
        indexer = Indexer(settings, store)
        health = await start_health(
            settings.host,
            settings.port,
            metrics.registry(),
            {"elasticsearch": store.ping},
        )
        task = asyncio.create_task(indexer.run())
        log.info("indexer_started", topics=settings.topics, group=settings.group)
        await stop.wait()
        indexer.stop()
        await task
        if health is not None:
            health.close()
            await health.wait_closed()
        await store.close()

    return run(serve)


def _es_auth(settings: Settings) -> tuple[str, str] | None:
    if settings.whale.es_username and settings.whale.es_password:
        return (settings.whale.es_username, settings.whale.es_password)
    return None
