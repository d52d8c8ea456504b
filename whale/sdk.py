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
it (once the events fetched with it are handled, or when the ``async with`` block ends). If the
body raises, the event in hand is not committed and is delivered again to the group: at-least-once,
so handlers should be idempotent (``event.id`` is a good key). Events of other types are skipped
(and committed). A message that is not a CloudEvent goes to ``whale.dlq`` with the reason. It runs
on Whale's shared consume loop (:class:`whale.consumer.EventConsumer`), which hands the body one
event at a time; its ``whale_consumer_messages_total`` is registered in prometheus_client's default
registry, which the host process's own ``/metrics`` serves.

``publish`` writes an event to ``whale.ingest`` (keyed by source + id, like the event center), whose
dedupe stage forwards it to ``whale.events``; it returns once Kafka acknowledged the write. It first
checks the event as the event center and the adapters do (:class:`whale.schemas.SchemaCheck` over
``whale.schemas``, followed from the first publish on): an unregistered type, data breaking the
type's schema (``format`` included) or an unknown ``dataschema`` version raise :class:`EventError`
naming the field, and nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from whale import topics as topic_names
from whale.cloudevent import CloudEvent, edge_problems
from whale.compacted import CompactedView
from whale.consumer import EventConsumer, Received
from whale.dead_letter import Stopping
from whale.errors import EventError
from whale.metrics import CONSUMER, into_default_registry
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

    Use it as ``async with subscribe(...) as events: async for event in events: ...``. An event
    counts as handled when the loop asks for the next event, or when the ``async with`` block ends
    without an exception (so a ``break`` after handling commits it); handled events are committed
    with the batch they were fetched in, or when the block ends. If the body raises, the event in
    hand stays uncommitted (with every event fetched after it) and the group gets it again.
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
        self._from_beginning = from_beginning
        self._max_batch = max_batch
        self._poll_timeout = poll_timeout
        self._consumer: EventConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._handed: asyncio.Queue[Received] = asyncio.Queue()
        self._replies: asyncio.Queue[bool] = asyncio.Queue()  # the body's verdict on the event in hand
        self._current: Received | None = None
        self._closing = False

    async def __aenter__(self) -> Subscription:
        self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        self._closing = True  # before the verdict: the loop hands out nothing more
        self._reply(handled=exc_type is None)
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> CloudEvent:
        task = self._open()
        self._reply(handled=True)
        taking = asyncio.ensure_future(self._handed.get())
        await asyncio.wait({taking, task}, return_when=asyncio.FIRST_COMPLETED)
        if not taking.done():
            taking.cancel()
            task.result()  # the loop failed: raise its error
            raise StopAsyncIteration
        self._current = taking.result()
        return self._current.event

    async def close(self) -> None:
        """Commit what was handled and leave the group."""
        self._closing = True
        if self._current is not None:
            self._reply(handled=False)
        if self._consumer is not None and self._task is not None:
            self._consumer.stop()
            with contextlib.suppress(Exception):
                await self._task
            self._consumer = self._task = None

    def _open(self) -> asyncio.Task[None]:
        if self._task is None:
            into_default_registry(CONSUMER)  # the host process's own /metrics serves that registry
            self._consumer = EventConsumer(
                self._settings,
                group_id=self.group,
                topics=self._topics,
                producer=producer_for(self._settings),
                batch_handler=self._hand_out,
                max_batch=self._max_batch,
                poll_timeout=self._poll_timeout,
                max_attempts=None,
                retryable=lambda exc: False,
                auto_offset_reset="earliest" if self._from_beginning else "latest",
                extra={  # librdkafka's session defaults, as the SDK always had
                    "client.id": f"whale-sdk-{self.group}",
                    "session.timeout.ms": 45_000,
                    "heartbeat.interval.ms": 3_000,
                },
            )
            self._task = asyncio.create_task(self._consumer.run(), name=f"sdk-{self.group}")
        return self._task

    def _reply(self, *, handled: bool) -> None:
        if self._current is not None:
            self._current = None
            self._replies.put_nowait(handled)

    async def _hand_out(self, batch: list[Received]) -> None:
        """The loop's batch handler: give the body each event of our types, one at a time."""
        for item in batch:
            if not type_matches(self._patterns, item.event.type):
                continue
            if self._closing:
                raise Stopping(unhandled=item)
            self._handed.put_nowait(item)
            if not await self._replies.get():
                raise Stopping(unhandled=item)


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
