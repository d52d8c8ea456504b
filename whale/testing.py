"""Fakes and taps for testing code built on Whale (as ``structlog.testing`` ships with structlog).

* :class:`FakeProducer` stands in for :class:`whale.producer.EventProducer` in unit tests: it
  acknowledges every send at once and records what was written (optionally failing every send,
  feeding :class:`FakeView` s the way Kafka and a :class:`whale.compacted.CompactedView` would).
* :class:`FakeView` stands in for a :class:`whale.compacted.CompactedView`: a dict of records that
  writes through a :class:`FakeProducer` (or :meth:`FakeView.apply`) change at once.
* :func:`capture_events` collects the events a :class:`FakeProducer` is given inside a ``with`` block.
* :class:`Tap` reads what services write to a real Kafka topic (integration tests): a thread over
  :func:`whale.tail.tail_consumer`, no consumer-group commits, from the topic's end (or start).
* :func:`register_schemas` registers event types on a real ``whale.schemas`` (what the event
  center's registry writes), so producers' contract checks (:mod:`whale.schemas`) accept them.

Unit tests use the fakes; integration tests use the real Kafka and a :class:`Tap` on it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from whale import topics
from whale.binding import KafkaMessage, from_kafka, headers_from, to_binary
from whale.cloudevent import CloudEvent
from whale.errors import DeliveryError
from whale.producer import Delivered, EventProducer
from whale.schemas import RECORD_TYPE
from whale.settings import WhaleSettings
from whale.tail import tail_consumer

__all__ = [
    "FakeProducer",
    "FakeView",
    "Sent",
    "Tap",
    "capture_events",
    "event_of",
    "register_schemas",
    "schema_record",
]


class Sent(NamedTuple):
    """One :meth:`FakeProducer.send` call: the topic, the event and its key."""

    topic: str
    event: CloudEvent
    key: str | None


def event_of(message: KafkaMessage) -> CloudEvent | None:
    """The CloudEvent ``message`` carries, or None for a tombstone or a message that is not one."""
    if message.value is None:
        return None
    try:
        return from_kafka(message)
    except Exception:  # foreign poison is nobody's event
        return None


class FakeView:
    """A compacted topic's latest record per key, in memory (what :class:`~whale.compacted.CompactedView`
    offers its readers). ``records`` may be filled directly before a test; :meth:`apply` changes it
    and wakes :meth:`wait_for`. With ``waits=False``, :meth:`wait_for` answers at once instead of
    waiting out its timeout (for a view nothing feeds while the test runs)."""

    def __init__(self, records: Mapping[str, CloudEvent] | None = None, *, waits: bool = True) -> None:
        self.records: dict[str, CloudEvent] = dict(records or {})
        self.waits = waits
        self._cond = threading.Condition()

    async def start(self, timeout: float = 60.0) -> None:
        return None

    async def stop(self) -> None:
        return None

    def get(self, key: str) -> CloudEvent | None:
        return self.records.get(key)

    def items(self) -> dict[str, CloudEvent]:
        return dict(self.records)

    def wait_for(self, predicate: Callable[[dict[str, CloudEvent]], bool], timeout: float) -> bool:
        """True once ``predicate(records)`` holds; False if it still does not after ``timeout`` s."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.records), timeout if self.waits else 0)

    def apply(self, key: str, event: CloudEvent | None) -> None:
        """Record ``event`` under ``key`` (None: a tombstone, which deletes the key)."""
        with self._cond:
            if event is None:
                self.records.pop(key, None)
            else:
                self.records[key] = event
            self._cond.notify_all()


class FakeProducer:
    """Acknowledges every send at once and records it.

    * ``sent``: the :meth:`send` calls as :class:`Sent` (topic, event, key);
    * ``messages``: the :meth:`send_message` calls as (topic, message);
    * ``records``: every write in order as (topic, message), as the topic would hold it.

    Writes to a topic in ``views`` are applied to that :class:`FakeView` (tombstones delete), as
    Kafka and the view's thread would; ``on_send`` is called with each :class:`Sent`. Set ``fail``
    to make every send raise :class:`~whale.errors.DeliveryError`, ``saturated`` to report a full
    queue.
    """

    def __init__(
        self,
        *,
        views: Mapping[str, FakeView] | None = None,
        on_send: Callable[[Sent], None] | None = None,
        fail: bool = False,
    ) -> None:
        self.views: dict[str, FakeView] = dict(views or {})
        self.sent: list[Sent] = []
        self.messages: list[tuple[str, KafkaMessage]] = []
        self.records: list[tuple[str, KafkaMessage]] = []
        self.fail = fail
        self.saturated = False
        self.closed = False
        self._on_send = on_send
        self._listeners: list[Callable[[str, KafkaMessage], None]] = []

    async def send(self, topic: str, event: CloudEvent, *, key: str | None = None) -> Delivered:
        self._check()
        self.sent.append(Sent(topic, event, key))
        delivered = self._write(topic, to_binary(event, key))
        if self._on_send is not None:
            self._on_send(self.sent[-1])
        return delivered

    async def send_message(self, topic: str, message: KafkaMessage) -> Delivered:
        self._check()
        self.messages.append((topic, message))
        return self._write(topic, message)

    def send_blocking(self, topic: str, message: KafkaMessage, timeout: float = 30.0) -> Delivered:
        self._check()
        self.messages.append((topic, message))
        return self._write(topic, message)

    def flush(self, timeout: float = 30.0) -> int:
        return 0

    def close(self, timeout: float = 30.0) -> None:
        self.closed = True

    def events(self, topic: str | None = None, type_prefix: str = "") -> list[CloudEvent]:
        """The events written (by either send method) to ``topic`` (any topic if None) whose type
        starts with ``type_prefix``, in order."""
        found = (event_of(m) for t, m in self.records if topic is None or t == topic)
        return [e for e in found if e is not None and e.type.startswith(type_prefix)]

    def _check(self) -> None:
        if self.fail:
            raise DeliveryError("broker down (FakeProducer.fail)")

    def _write(self, topic: str, message: KafkaMessage) -> Delivered:
        self.records.append((topic, message))
        view = self.views.get(topic)
        if view is not None and message.key is not None:
            view.apply(message.key.decode(), None if message.value is None else from_kafka(message))
        for listener in list(self._listeners):
            listener(topic, message)
        return Delivered(topic, 0, len(self.records) - 1)


@contextmanager
def capture_events(producer: FakeProducer, topic: str | None = None) -> Iterator[list[CloudEvent]]:
    """The events ``producer`` is given inside the block (on ``topic``, or any), in order; a
    tombstone or a raw non-event message is not an event and is left out.

    >>> with capture_events(producer, "whale.ingest") as events:
    ...     client.post("/events", json=...)
    >>> [e.type for e in events]
    """
    captured: list[CloudEvent] = []

    def listen(written_to: str, message: KafkaMessage) -> None:
        event = event_of(message)
        if event is not None and (topic is None or written_to == topic):
            captured.append(event)

    producer._listeners.append(listen)
    try:
        yield captured
    finally:
        producer._listeners.remove(listen)


def schema_record(type_: str, *schemas: Any) -> CloudEvent:
    """The ``whale.schemas`` record of ``type_`` with these schema versions (1, 2, …)."""
    versions = [
        {"version": n, "schema": schema, "registered_at": "2026-01-01T00:00:00Z"}
        for n, schema in enumerate(schemas, 1)
    ]
    return CloudEvent.create(
        type=RECORD_TYPE,
        source="urn:whale:testing",
        subject=type_,
        data={"type": type_, "versions": versions},
    )


def register_schemas(settings: WhaleSettings, schemas: Mapping[str, Any]) -> None:
    """Write each type's schema as its version 1 on ``whale.schemas`` of a real Kafka (acknowledged),
    replacing what the type had: for test stacks only."""
    producer = EventProducer(settings)
    try:
        for type_, schema in schemas.items():
            producer.send_blocking(topics.SCHEMAS, to_binary(schema_record(type_, schema), type_))
    finally:
        producer.close()


class Tap:
    """What services write to ``topic`` of a real Kafka, read in a background thread from the topic's
    end when the tap opens (or its start with ``from_start``), with no consumer-group commits.

    * ``messages``: every message read that ``keep_message`` accepts, CloudEvent or not (poison,
      dead letters), in the order read (each partition in order; partitions interleave freely);
    * :meth:`written_ms`: the broker's timestamp of one of them (to check an order across partitions);
    * ``seen``: the CloudEvents among them that ``keep`` accepts, each with its message;
    * :attr:`events`: the events of ``seen``.

    Waiting never fails by itself: :meth:`wait` answers what it found when time ran out, so the test
    states what it expected; :meth:`expect` is the variant that raises.
    """

    def __init__(
        self,
        settings: WhaleSettings,
        topic: str,
        *,
        keep: Callable[[CloudEvent], bool] | None = None,
        keep_message: Callable[[KafkaMessage], bool] | None = None,
        from_start: bool = False,
    ) -> None:
        self.topic = topic
        self.messages: list[KafkaMessage] = []
        self._written_ms: dict[int, int] = {}
        self.seen: list[tuple[CloudEvent, KafkaMessage]] = []
        self._keep = keep
        self._keep_message = keep_message
        self._consumer = tail_consumer(settings, topic, from_start=from_start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tap-{topic}", daemon=True)
        self._thread.start()

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def events(self) -> list[CloudEvent]:
        return [e for e, _ in list(self.seen)]

    def of(self, type_prefix: str, **data: Any) -> list[CloudEvent]:
        """Events whose type starts with ``type_prefix`` and whose data has these items."""
        return [
            e
            for e in self.events
            if e.type.startswith(type_prefix)
            and all(isinstance(e.data, dict) and e.data.get(k) == v for k, v in data.items())
        ]

    def wait(
        self,
        predicate: Callable[[CloudEvent], bool] = lambda _: True,
        count: int = 1,
        timeout: float = 120.0,
        settle: float = 0.0,
    ) -> list[CloudEvent]:
        """The events matching ``predicate`` once ``count`` arrived or ``timeout`` s passed (then
        ``settle`` s more, to let extras show up)."""
        deadline = time.monotonic() + timeout
        while len([e for e in self.events if predicate(e)]) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        if settle:
            time.sleep(settle)
        return [e for e in self.events if predicate(e)]

    async def await_(
        self, predicate: Callable[[CloudEvent], bool], count: int = 1, **kw: Any
    ) -> list[CloudEvent]:
        """:meth:`wait` without blocking the event loop."""
        return await asyncio.to_thread(self.wait, predicate, count, **kw)

    async def expect(
        self, type_prefix: str, count: int = 1, timeout: float = 60.0, **data: Any
    ) -> list[CloudEvent]:
        """At least ``count`` events of :meth:`of` (``type_prefix``, ``data``), else AssertionError
        listing what was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(type_prefix, **data)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        seen = [(e.type, e.data.get("task") if isinstance(e.data, dict) else None) for e in self.events]
        raise AssertionError(f"no {count} x {type_prefix} {data} within {timeout}s; seen {seen}")

    def wait_messages(self, count: int, timeout: float = 90.0) -> list[KafkaMessage]:
        """``messages`` once there are ``count`` of them (or fewer after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.05)
        return list(self.messages)

    def settle(self, quiet: float = 3.0) -> list[KafkaMessage]:
        """``messages`` once nothing new arrived for ``quiet`` s (to check that nothing more comes)."""
        seen, since = -1, time.monotonic()
        while time.monotonic() - since < quiet:
            if len(self.messages) != seen:
                seen, since = len(self.messages), time.monotonic()
            time.sleep(0.05)
        return list(self.messages)

    def poll(self, seconds: float) -> None:
        """Let the tap read for ``seconds`` more (room for a late message to show up)."""
        time.sleep(seconds)

    def written_ms(self, message: KafkaMessage) -> int:
        """The Kafka timestamp (ms) of a message this tap read."""
        return self._written_ms[id(message)]

    def close(self) -> None:
        """Stop reading (idempotent); the thread closes the consumer."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                msg: Any = self._consumer.poll(0.1)
                if msg is not None and msg.error() is None:
                    message = KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))
                    self._written_ms[id(message)] = msg.timestamp()[1]
                    self._take(message)
        finally:
            self._consumer.close()

    def _take(self, message: KafkaMessage) -> None:
        if self._keep_message is not None and not self._keep_message(message):
            return
        self.messages.append(message)
        event = event_of(message)
        if event is not None and (self._keep is None or self._keep(event)):
            self.seen.append((event, message))
