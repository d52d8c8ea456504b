"""``whale run indexer``: every bus topic into Elasticsearch, at least once and idempotently.

Reads ``whale.events``, ``whale.actions`` and every pool topic (``^whale\\.actions.*``),
``whale.results`` and ``whale.dlq`` in its own consumer group. Each batch is bulk-indexed and its
offsets are committed only after Elasticsearch acknowledged every document; while Elasticsearch is
down the indexer retries the same batch with backoff (nothing is skipped) and then catches up.

It runs on the shared consume loop (:class:`whale.consumer.EventConsumer`) with raw messages: a
message is indexed as it is, never decoded or dead-lettered (a dead letter of ``whale.dlq`` would
loop forever).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

import structlog

from whale.binding import KafkaMessage, headers_from
from whale.consumer import EventConsumer
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
        self._consumer = EventConsumer(
            settings.whale,
            group_id=settings.group,
            topics=list(settings.topics),
            producer=None,
            raw_handler=self._index_batch,
            max_batch=settings.batch,
            max_attempts=None,  # only an Elasticsearch outage is retried; any other error stops the stage
            retryable=lambda exc: isinstance(exc, StoreUnavailable),
            backoff_base=0.5,
            backoff_max=15.0,
            auto_offset_reset=settings.offset_reset,
            extra={
                "topic.metadata.refresh.interval.ms": 10_000,
                "max.poll.interval.ms": 3_600_000,  # an Elasticsearch outage pauses polling
            },
            before_fetch=self._maybe_expire,
            on_assign=self._on_assign,
        )
        self._next_retention = 0.0
        self._template_ready = False

        self.assigned = threading.Event()  # set once partitions are assigned (tests wait for it)

    def stop(self) -> None:
        self._consumer.stop()

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assigned.set()

    async def run(self) -> None:
        """Index every batch, committed once Elasticsearch stored all of it (retried while it is down)."""
        await self._consumer.run()

    async def _index_batch(self, messages: list[Any]) -> None:
        docs = [_to_document(m, self._settings.dlq_topic) for m in messages]
        await self.index(docs, [m.topic() for m in messages])
        newest = max((m.timestamp()[1] for m in messages), default=0)
        if newest > 0:
            metrics.LAG_SECONDS.set(max(0.0, time.time() - newest / 1000))

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

    return run(serve, settings.whale.event_loop)


def _es_auth(settings: Settings) -> tuple[str, str] | None:
    if settings.whale.es_username and settings.whale.es_password:
        return (settings.whale.es_username, settings.whale.es_password)
    return None
