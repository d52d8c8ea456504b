"""Writing adapter events into ``whale.ingest``: validate, send (acknowledged), dead-letter the invalid."""

from __future__ import annotations

import asyncio
import random

import structlog

from whale import topics
from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent
from whale.dead_letter import dlq_message
from whale.errors import DeliveryError, MessageTooLarge
from whale.logging import bound_event
from whale.producer import Delivered, EventProducer
from whale.redaction import Redactor
from whale_adapters import metrics
from whale_adapters.errors import PayloadError
from whale_adapters.validation import EventValidator, ingest_key

log = structlog.get_logger(__name__)


class IngestWriter:
    """Validates events with the event center's rules and writes them to ``whale.ingest``."""

    def __init__(
        self,
        producer: EventProducer,
        validator: EventValidator,
        *,
        attempts: int = 5,
        backoff: float = 0.2,
        redactor: Redactor | None = None,
    ) -> None:
        self.producer = producer
        self.validator = validator
        self.redactor = redactor or Redactor()
        self._attempts = attempts
        self._backoff = backoff

    async def publish(self, event: CloudEvent, *, adapter: str) -> Delivered:
        """Validate then send; raises :class:`PayloadError` (invalid) or :class:`DeliveryError`
        (Kafka did not acknowledge after the retries)."""
        try:
            self.validator.validate(event)
        except PayloadError:
            metrics.EVENTS.labels(adapter=adapter, outcome="invalid").inc()
            raise
        event = self.redactor.apply(event)
        attempt = 0
        while True:
            attempt += 1
            try:
                delivered = await self.producer.send(topics.INGEST, event, key=ingest_key(event))
            except DeliveryError as exc:
                if not exc.retryable or attempt >= self._attempts:
                    metrics.EVENTS.labels(adapter=adapter, outcome="failed").inc()
                    raise
                delay = self._backoff * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
                continue
            metrics.EVENTS.labels(adapter=adapter, outcome="published").inc()
            return delivered

    async def publish_or_dead_letter(self, event: CloudEvent, *, adapter: str) -> bool:
        """Publish; an invalid event goes to ``whale.dlq`` with the reason. True when published."""
        with bound_event(event):
            try:
                await self.publish(event, adapter=adapter)
                return True
            except PayloadError as exc:
                log.warning("adapter_event_invalid", adapter=adapter, reason=exc.message)
                await self.dead_letter(event, reason=f"invalid: {exc.message}", adapter=adapter)
                return False
            except MessageTooLarge as exc:
                log.warning("adapter_event_too_large", adapter=adapter, reason=exc.message)
                await self.dead_letter(
                    event, reason=f"too large: {exc.message}", adapter=adapter, keep_data=False
                )
                return False

    async def dead_letter(
        self, event: CloudEvent, *, reason: str, adapter: str, keep_data: bool = True
    ) -> None:
        """A copy on ``whale.dlq`` with the reason; without its data when that cannot fit Kafka."""
        message = to_binary(event, ingest_key(event))
        if not keep_data:
            message = KafkaMessage(message.key, None, message.headers)
        copy = dlq_message(
            message,
            reason=reason,
            topic=topics.INGEST,
            partition=-1,
            offset=-1,
            group=f"adapter:{adapter}",
        )
        await self.producer.send_message(topics.DLQ, copy)
