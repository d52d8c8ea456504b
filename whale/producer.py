"""An acknowledged CloudEvents producer on confluent-kafka.

acks=all and idempotence are always on; :meth:`EventProducer.send` resolves only when Kafka
acknowledged the write and raises :class:`DeliveryError` when it did not (never fire-and-forget).
A background thread serves delivery reports; in-flight sends are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from whale.admin import topic_max_bytes
from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent
from whale.errors import DeliveryError, MessageTooLarge
from whale.settings import KAFKA_LOGGER, WhaleSettings


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where Kafka stored a message."""

    topic: str
    partition: int
    offset: int


class EventProducer:
    """Send CloudEvents (binary mode) or raw messages; each send is confirmed by Kafka."""

    def __init__(
        self,
        settings: WhaleSettings,
        *,
        max_in_flight: int = 10_000,
        delivery_timeout_ms: int = 30_000,
        client_id: str = "whale",
        extra: dict[str, Any] | None = None,
    ) -> None:
        conf: dict[str, Any] = {
            **settings.kafka_config(),
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            # 0.5 ms: a lone acked write waits ~2.5 ms less than at 2 ms, while the records a burst
            # produces in one loop turn still share a request (same CPU per record at 1,000 chains/s)
            "linger.ms": 0.5,
            "delivery.timeout.ms": delivery_timeout_ms,
            "request.timeout.ms": min(delivery_timeout_ms, 30_000),
            "queue.buffering.max.messages": max(max_in_flight * 2, 1000),
            "compression.type": settings.kafka_compression,
            "message.max.bytes": settings.kafka_message_max_bytes,
            "logger": KAFKA_LOGGER,
        }
        conf.update(extra or {})
        self._settings = settings
        self._max_message_bytes = int(conf["message.max.bytes"])
        self._topic_limits: dict[str, int] = {}
        self._limit_asked: dict[str, float] = {}
        self._producer = Producer(conf)
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._lock = threading.Lock()
        self._settled: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Delivered], SendOutcome]] = []
        self._closed = threading.Event()
        self._client_closed = False
        self._poller = threading.Thread(target=self._poll_loop, name="whale-producer-poll", daemon=True)
        self._poller.start()

    # ------------------------------------------------------------------ public API
    @property
    def in_flight(self) -> int:
        """Sends not yet acknowledged."""
        return self._in_flight

    @property
    def saturated(self) -> bool:
        """True when another send would exceed the in-flight bound (callers answer 429)."""
        return self._in_flight >= self._max_in_flight

    def record_limit(self, topic: str) -> int:
        """The largest record ``topic`` takes from this producer: the smaller of the producer's
        ``message.max.bytes`` and the topic's ``max.message.bytes`` (asked once, blocking)."""
        found = self._topic_limits.get(topic)
        if found is not None:
            return found
        asked = self._limit_asked.get(topic)
        if asked is not None and time.monotonic() - asked < LIMIT_RETRY_SECONDS:
            return self._max_message_bytes  # not known yet: librdkafka and the broker still check
        self._limit_asked[topic] = time.monotonic()
        topic_limit = topic_max_bytes(self._settings, topic)
        if topic_limit is None:
            return self._max_message_bytes
        found = self._topic_limits[topic] = min(self._max_message_bytes, topic_limit)
        return found

    def check_size(self, topic: str, message: KafkaMessage, limit: int | None = None) -> None:
        """Raise :class:`MessageTooLarge` when ``message`` cannot fit a record of ``topic``."""
        limit = self._topic_limits.get(topic, self._max_message_bytes) if limit is None else limit
        size = record_size(message)
        if size > limit:
            raise MessageTooLarge(
                f"the record would be about {size} bytes; {topic} takes at most {limit} bytes "
                "(producer message.max.bytes, topic max.message.bytes)",
                limit=limit,
            )

    async def send(self, topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        """Write ``event`` in binary mode; returns once Kafka acknowledged it (acks=all)."""
        try:
            return await self.send_message(topic, to_binary(event, key))
        except MessageTooLarge as exc:
            raise MessageTooLarge(exc.message, limit=exc.limit, event_id=event.id) from None
        except DeliveryError as exc:
            raise DeliveryError(exc.message, event_id=event.id, retryable=exc.retryable) from None

    async def send_message(self, topic: str, message: KafkaMessage) -> Delivered:
        """Write a raw message; returns once Kafka acknowledged it. A message too large for the
        topic raises :class:`MessageTooLarge` before anything is produced."""
        loop = asyncio.get_running_loop()
        limit = self._topic_limits.get(topic)
        if limit is None:
            # Learn the topic's own limit in the background: awaiting it here would let later sends
            # overtake this one and break per-key order. Until it is known the producer's limit
            # applies, and the broker's MSG_SIZE_TOO_LARGE is a MessageTooLarge (413) all the same.
            asked = self._limit_asked.get(topic)
            if asked is None or time.monotonic() - asked >= LIMIT_RETRY_SECONDS:
                lookup = loop.run_in_executor(None, self.record_limit, topic)
                lookup.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.check_size(topic, message, limit)
        future: asyncio.Future[Delivered] = loop.create_future()

        def settle(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                outcome: Delivered | DeliveryError = _delivery_error(topic, err, self._max_message_bytes)
            else:
                outcome = Delivered(msg.topic(), msg.partition(), msg.offset())
            with self._lock:
                self._in_flight -= 1
                self._settled.append((loop, future, outcome))

        self._produce(topic, message, settle)
        return await future

    def send_blocking(self, topic: str, message: KafkaMessage, timeout: float = 30.0) -> Delivered:
        """Synchronous variant for code without an event loop (CLI, WSGI)."""
        self.check_size(topic, message, self.record_limit(topic))
        done = threading.Event()
        box: list[Delivered | DeliveryError] = []

        def settle(err: KafkaError | None, msg: Any) -> None:
            with self._lock:
                self._in_flight -= 1
            if err is not None:
                box.append(_delivery_error(topic, err, self._max_message_bytes))
            else:
                box.append(Delivered(msg.topic(), msg.partition(), msg.offset()))
            done.set()

        self._produce(topic, message, settle)
        if not done.wait(timeout):
            raise DeliveryError(f"no acknowledgement from Kafka for {topic} within {timeout}s")
        outcome = box[0]
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for outstanding deliveries; returns how many are still pending."""
        if self._client_closed:
            return 0
        try:
            return int(self._producer.flush(timeout))
        finally:
            self._wake_senders()

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the delivery-report thread and, when nothing is left to deliver, the client
        (which otherwise keeps reconnecting to an unreachable broker until it is garbage-collected)."""
        if self._client_closed:
            return
        self.flush(timeout)
        self._closed.set()
        self._poller.join(timeout=5)
        if len(self._producer) == 0 and hasattr(self._producer, "close"):  # close() since confluent 2.10
            self._producer.close()
            self._client_closed = True

    # ------------------------------------------------------------------ internals
    def _produce(self, topic: str, message: KafkaMessage, callback: Any) -> None:
        if self._closed.is_set():
            raise DeliveryError("producer is closed", retryable=False)
        with self._lock:
            if self._in_flight >= self._max_in_flight:
                raise DeliveryError("too many sends in flight", retryable=True)
            self._in_flight += 1
        try:
            self._producer.produce(
                topic,
                value=message.value,
                key=message.key,
                headers=list(message.headers),
                on_delivery=callback,
            )
        except KafkaException as exc:
            with self._lock:
                self._in_flight -= 1
            if exc.args and isinstance(exc.args[0], KafkaError):
                raise _delivery_error(topic, exc.args[0], self._max_message_bytes) from None
            raise DeliveryError(f"cannot enqueue the write to {topic}: {exc}", retryable=True) from None
        except BufferError as exc:
            with self._lock:
                self._in_flight -= 1
            raise DeliveryError(f"cannot enqueue the write to {topic}: {exc}", retryable=True) from None

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)
            self._wake_senders()

    def _wake_senders(self) -> None:
        """Resolve the sends whose delivery reports the last poll served: one wake-up per event loop
        for all of them (the writes of concurrent senders are acknowledged together, group commit),
        not one per message."""
        with self._lock:
            settled, self._settled = self._settled, []
        by_loop: dict[asyncio.AbstractEventLoop, list[Settled]] = {}
        for loop, future, outcome in settled:
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve_all, items)


SendOutcome = Delivered | DeliveryError
Settled = tuple[asyncio.Future[Delivered], SendOutcome]
LIMIT_RETRY_SECONDS = 60.0
RECORD_OVERHEAD = 128  # record batch header (61 bytes) plus one record's framing, rounded up
HEADER_OVERHEAD = 10  # two varints per header


def record_size(message: KafkaMessage) -> int:
    """An upper estimate of the bytes Kafka counts for ``message`` (uncompressed)."""
    size = RECORD_OVERHEAD + len(message.key or b"") + len(message.value or b"")
    return size + sum(len(name.encode()) + len(value) + HEADER_OVERHEAD for name, value in message.headers)


def _delivery_error(topic: str, err: KafkaError, limit: int) -> DeliveryError:
    text = f"Kafka did not acknowledge the write to {topic}: {err.str()}"
    if err.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE):
        return MessageTooLarge(text, limit=limit)
    return DeliveryError(text, retryable=bool(err.retriable()) or err.code() == KafkaError._MSG_TIMED_OUT)


def _resolve_all(items: list[Settled]) -> None:
    for future, outcome in items:
        if future.done():
            continue
        if isinstance(outcome, DeliveryError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
