"""The pull SDK: how any new system joins the bus in a few lines.

::

    from whale.sdk import publish, subscribe
    from whale.correlation import caused_by

    async with subscribe(settings, types=["cmdb.ci.*"], group="ci-checker") as events:
        async for event in events:
            verdict = check(event.data)
            await publish(caused_by(event, type="cichecker.ci.checked", source="/ci-checker", data=verdict))

``subscribe`` yields :class:`~whale.cloudevent.CloudEvent` objects from ``whale.events`` (or the
topics given) in a consumer group, and commits an event's offset only after the loop body handled
it (when the loop asks for the next event, or when the ``async with`` block ends normally). If the
body raises, the event in hand is not committed and is delivered again to the group: at-least-once,
so handlers should be idempotent (``event.id`` is a good key). Events of other types are skipped
(and committed). A message that is not a CloudEvent goes to ``whale.dlq`` with the reason.

``publish`` writes an event to ``whale.ingest`` (keyed by source + id, like the event center), whose
dedupe stage forwards it to ``whale.events``; it returns once Kafka acknowledged the write. It first
checks the event as the event center and the adapters do (:class:`whale.schemas.SchemaCheck` over
``whale.schemas``, followed from the first publish on): an unregistered type, data breaking the
type's schema (``format`` included) or an unknown ``dataschema`` version raise :class:`EventError`
naming the field, and nothing is written.
"""

from __future__ import annotations

import asyncio
import fnmatch
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import structlog
from confluent_kafka import Consumer, TopicPartition
from pydantic import BaseModel, ValidationError

from whale import topics as topic_names
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent, edge_problems
from whale.compacted import CompactedView
from whale.consumer import dlq_message
from whale.errors import BindingError, EventError
from whale.producer import Delivered, EventProducer
from whale.schemas import SchemaCheck, describe
from whale.settings import WhaleSettings

log = structlog.get_logger(__name__)
_producers: dict[str, EventProducer] = {}
_checks: dict[str, SchemaCheck] = {}


def _matcher(types: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if types is None:
        return None
    return (types,) if isinstance(types, str) else tuple(types)


def type_matches(patterns: tuple[str, ...] | None, type_: str) -> bool:
    """True when ``type_`` equals one of ``patterns`` or matches it as a glob (``cmdb.ci.*``)."""
    return patterns is None or any(fnmatch.fnmatchcase(type_, p) for p in patterns)


class Subscription:
    """The events of ``types`` from ``topics`` for consumer group ``group``, as an async iterator.

    Use it as ``async with subscribe(...) as events: async for event in events: ...``. An event's
    offset is committed once it was handled: when the loop asks for the next event, or when the
    ``async with`` block ends without an exception (so a ``break`` after handling commits it). If
    the body raises, the event in hand stays uncommitted and the group gets it again.
    """

    def __init__(
        self,
        settings: WhaleSettings,
        *,
        group: str,
        types: Iterable[str] | str | None = None,
        topics: Sequence[str] = (topic_names.EVENTS,),
        from_beginning: bool = False,
        max_batch: int = 100,
        poll_timeout: float = 0.5,
    ) -> None:
        if not group:
            raise ValueError("subscribe() needs a consumer group name (group=...)")
        self._settings = settings
        self.group = group
        self._patterns = _matcher(types)
        self._topics = list(topics)
        self._conf: dict[str, Any] = {
            **settings.kafka_config(),
            "group.id": group,
            "client.id": f"whale-sdk-{group}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": False,
        }
        self._max_batch = max_batch
        self._poll_timeout = poll_timeout
        self._consumer: Any = None
        self._buffer: deque[Any] = deque()
        self._current: Any = None
        self._done: dict[tuple[str, int], int] = {}
        self.committed = 0

    async def __aenter__(self) -> Subscription:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc_type is None:
            self._handled()
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> CloudEvent:
        await self._open()
        self._handled()
        while True:
            if not self._buffer:
                await self._commit()
                batch: list[Any] = await asyncio.to_thread(
                    self._consumer.consume, self._max_batch, self._poll_timeout
                )
                self._buffer.extend(m for m in batch if m.error() is None)
                continue
            msg = self._buffer.popleft()
            plain = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
            try:
                event = from_kafka(plain)
            except BindingError as exc:
                await _dead_letter(self._settings, plain, msg, self.group, f"unreadable: {exc}")
                self._done[(msg.topic(), msg.partition())] = msg.offset()
                continue
            if type_matches(self._patterns, event.type):
                self._current = msg
                return event
            self._done[(msg.topic(), msg.partition())] = msg.offset()

    async def close(self) -> None:
        """Commit what was handled and leave the group."""
        if self._consumer is not None:
            await self._commit()
            await asyncio.to_thread(self._consumer.close)
            self._consumer = None

    async def _open(self) -> None:
        if self._consumer is None:
            self._consumer = Consumer(self._conf)
            await asyncio.to_thread(self._consumer.subscribe, self._topics)

    def _handled(self) -> None:
        if self._current is not None:
            self._done[(self._current.topic(), self._current.partition())] = self._current.offset()
            self._current = None

    async def _commit(self) -> None:
        if self._done:
            done, self._done = self._done, {}
            await asyncio.to_thread(_commit, self._consumer, done)
            self.committed += len(done)


def subscribe(
    settings: WhaleSettings,
    *,
    group: str,
    types: Iterable[str] | str | None = None,
    topics: Sequence[str] = (topic_names.EVENTS,),
    from_beginning: bool = False,
    max_batch: int = 100,
    poll_timeout: float = 0.5,
) -> Subscription:
    """Subscribe consumer group ``group`` to the events of ``types`` (names or globs such as
    ``cmdb.ci.*``; None = all) on ``topics`` (default ``whale.events``). A new group starts at
    the end of the topics unless ``from_beginning``. See :class:`Subscription`."""
    return Subscription(
        settings,
        group=group,
        types=types,
        topics=topics,
        from_beginning=from_beginning,
        max_batch=max_batch,
        poll_timeout=poll_timeout,
    )


def _commit(consumer: Any, done: dict[tuple[str, int], int]) -> None:
    offsets = [TopicPartition(t, p, o + 1) for (t, p), o in done.items()]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except Exception as exc:  # rebalanced away: the new owner re-reads (at-least-once)
        log.warning("sdk_commit_failed", error=str(exc))


async def _dead_letter(
    settings: WhaleSettings, plain: KafkaMessage, msg: Any, group: str, reason: str
) -> None:
    copy = dlq_message(
        plain, reason=reason, topic=msg.topic(), partition=msg.partition(), offset=msg.offset(), group=group
    )
    await producer_for(settings).send_message(topic_names.DLQ, copy)
    log.warning("sdk_dead_lettered", group=group, topic=msg.topic(), offset=msg.offset(), reason=reason)


ModelT = TypeVar("ModelT", bound=BaseModel)


def data_as(event: CloudEvent, model: type[ModelT]) -> ModelT:
    """The event's data as a pydantic ``model``; :class:`EventError` names each bad field
    (``data.owner``) so a handler can dead-letter or skip with a precise reason."""
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(["data", *(str(p) for p in err["loc"])]), "message": str(err["msg"])}
            for err in exc.errors()
        ]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise EventError(
            f"event {event.id} ({event.type}): {text}",
            problems,
            event_id=event.id,
            field=problems[0]["field"],
        ) from None


def producer_for(settings: WhaleSettings) -> EventProducer:
    """The SDK's shared producer for these settings (created on first use)."""
    key = settings.kafka_bootstrap
    producer = _producers.get(key)
    if producer is None:
        producer = _producers[key] = EventProducer(settings, client_id=f"whale-sdk-{uuid.uuid4().hex[:8]}")
    return producer


async def schema_check(settings: WhaleSettings) -> SchemaCheck:
    """The contract check over ``whale.schemas`` for these settings (its view starts on first use)."""
    key = settings.kafka_bootstrap
    found = _checks.get(key)
    if found is None:
        view = CompactedView(settings, topic_names.SCHEMAS)
        await view.start()
        found = _checks.setdefault(key, SchemaCheck(view))
    return found


async def publish(
    event: CloudEvent, *, settings: WhaleSettings | None = None, topic: str = topic_names.INGEST
) -> Delivered:
    """Write ``event`` to ``whale.ingest`` once it keeps its type's contract (else
    :class:`EventError` naming the field); returns once Kafka acknowledged."""
    settings = settings or WhaleSettings()
    if topic == topic_names.INGEST:
        problems = edge_problems(event) or (await schema_check(settings)).problems(event)
        if problems:
            raise EventError(
                f"event {event.id} ({event.type}) breaks its contract: {describe(problems)}",
                problems,
                event_id=event.id,
                field=problems[0]["field"],
            )
    producer = producer_for(settings)
    key = f"{event.source}\n{event.id}" if topic == topic_names.INGEST else None
    return await producer.send(topic, event, key=key)


def close(timeout: float = 30.0) -> None:
    """Flush and close the SDK's producers (call at exit)."""
    while _producers:
        _, producer = _producers.popitem()
        producer.close(timeout)
