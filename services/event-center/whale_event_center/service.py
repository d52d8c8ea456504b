"""``POST /events`` end to end: authenticate, parse, check grants and contracts, write to Kafka.

A 202 is answered only after Kafka acknowledged the write to ``whale.ingest`` (acks=all); the dedupe
stage forwards each (source, id) once to ``whale.events``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Protocol

import structlog

from whale.authz import Authenticator, AuthError, Role, split_token
from whale.binding import to_binary
from whale.cloudevent import CloudEvent, warnings
from whale.errors import DeliveryError, MessageTooLarge
from whale.metrics import BoundedLabel
from whale.producer import Delivered
from whale.redaction import Redactor
from whale.schemas import describe
from whale_event_center import metrics
from whale_event_center.auth import APPROVALS, DEV_SENDER, Sender, TokenStore
from whale_event_center.errors import (
    EventCenterError,
    Forbidden,
    InvalidEvent,
    Saturated,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from whale_event_center.ingest import Item, parse
from whale_event_center.registry import SchemaRegistry
from whale_event_center.settings import Settings

log = structlog.get_logger(__name__)

TYPE_LABELS = 500
"""At most this many event types get their own series of ``whale_event_center_events_total``."""


class Producer(Protocol):
    @property
    def saturated(self) -> bool: ...
    async def send_message(self, topic: str, message: Any) -> Delivered: ...


def ingest_key(source: str, id_: str) -> str:
    """The ``whale.ingest`` key: one (source, id) always lands on the same partition (dedupe)."""
    return f"{source}\n{id_}"


@dataclass(slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Ingest:
    def __init__(
        self,
        settings: Settings,
        producer: Producer,
        registry: SchemaRegistry,
        tokens: TokenStore | None,
        ready: Any = None,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._registry = registry
        self._tokens = tokens
        self._ready = ready or (lambda: True)
        # the type label: registered types only, at most TYPE_LABELS of them, else "other"
        self._type_label = BoundedLabel(lambda t: bool(registry.versions(t)), cap=TYPE_LABELS)
        self._redactor = Redactor.from_settings(settings.whale)
        self.people: Authenticator | None = None  # personal tokens and OIDC (set by create_app)

    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self._settings.retry_after)}

    async def handle(self, content_type: str | None, headers: Mapping[str, str], body: bytes) -> Answer:
        started = time.perf_counter()
        mode = "unknown"
        try:
            sender = await self._authenticate(headers, body)
            mode, items = parse(content_type, headers, body, self._settings.max_event_bytes)
            if mode == "batch":
                answer = await self._batch(sender, items)
            else:
                event = await self._one(sender, items[0])
                out: dict[str, Any] = {"status": "accepted", "id": event.id, "source": event.source}
                found = self._warnings(event)
                if found:
                    out["warnings"] = found
                answer = Answer(202, out)
        except EventCenterError as exc:
            metrics.REQUESTS.labels(type="unknown", outcome=exc.code).inc()
            headers_out = self._retry_after() if exc.status in (429, 503) else {}
            answer = Answer(exc.status, exc.body(), {**headers_out, **exc.headers})
        metrics.REQUEST_SECONDS.labels(mode=mode).observe(time.perf_counter() - started)
        return answer

    def _warnings(self, event: CloudEvent) -> list[dict[str, str]]:
        return warnings(event) + self._registry.warnings(event)

    async def _authenticate(self, headers: Mapping[str, str], body: bytes) -> Sender:
        if self._settings.dev_mode:
            return DEV_SENDER
        lowered = {k.lower(): v for k, v in headers.items()}
        authorization = lowered.get("authorization")
        token = (authorization or "").partition(" ")[2].strip()
        if self.people is not None and (split_token(token) or token.count(".") == 2):
            return await self._person(authorization)
        if self._tokens is None:
            raise Unavailable("no tokens file is configured (set WHALE_EVENT_CENTER_TOKENS_FILE or dev mode)")
        return self._tokens.authenticate(
            authorization,
            lowered.get(self._settings.signature_header.lower()),
            body,
            lowered.get(self._settings.timestamp_header.lower()),
            window=self._settings.replay_window,
        )

    async def _person(self, authorization: str | None) -> Sender:
        """A person (or service) with a personal token or OIDC JWT: operator may publish events."""
        assert self.people is not None
        try:
            identity = await self.people.authenticate(authorization)
        except AuthError as exc:
            raise Unauthenticated(exc.message, field="authorization") from None
        if identity.role < Role.operator:
            raise Forbidden(
                f"{identity.name!r} ({identity.role.name}) may not publish events: that needs operator",
                field="authorization",
            )
        return Sender(name=identity.name, sources=("*",), person=identity)

    def _check(self, sender: Sender, item: Item) -> CloudEvent:
        if item.error is not None:
            raise item.error
        event = item.event
        assert event is not None
        sender.check_source(event.source, event.id)
        sender.check_type(event.type, event.id)
        if fnmatchcase(event.type, APPROVALS):
            event = _approved_by(event, sender)
            item.event = event
        if not self._ready():
            raise Unavailable("the schema registry is still loading; retry shortly", event_id=event.id)
        problems = self._registry.check_event(event)
        if problems:
            raise InvalidEvent(
                f"event {event.id!r} breaks its contract: {describe(problems)}",
                problems,
                event_id=event.id,
                field=problems[0]["field"],
            )
        return self._redactor.apply(event)  # after the contract check: *** need not match the schema

    def _validated(self, sender: Sender, item: Item) -> CloudEvent:
        try:
            return self._check(sender, item)
        except EventCenterError as exc:
            label = self._type_label(item.event.type) if item.event else "unknown"
            metrics.REQUESTS.labels(type=label, outcome=exc.code).inc()
            if exc.event_id is None and item.id is not None:
                exc.event_id = item.id
            raise

    async def _written(self, event: CloudEvent) -> None:
        label = self._type_label(event.type)
        try:
            await self._write(event)
        except EventCenterError as exc:
            metrics.REQUESTS.labels(type=label, outcome=exc.code).inc()
            raise
        metrics.REQUESTS.labels(type=label, outcome="accepted").inc()

    async def _one(self, sender: Sender, item: Item) -> CloudEvent:
        event = self._validated(sender, item)
        await self._written(event)
        return event

    async def _write(self, event: CloudEvent) -> None:
        try:
            async with asyncio.timeout(self._settings.produce_timeout + 1):
                await self._send(event)
        except TimeoutError as exc:
            raise _unacknowledged(event, exc) from None

    async def _send(self, event: CloudEvent) -> None:
        """Write ``event`` to the ingest topic; returns once Kafka acknowledged it (no deadline)."""
        if self._producer.saturated:
            raise Saturated("too many events are waiting for Kafka; retry shortly", event_id=event.id)
        message = to_binary(event, key=ingest_key(event.source, event.id))
        try:
            await self._producer.send_message(self._settings.ingest_topic, message)
        except MessageTooLarge as exc:
            raise TooLarge(
                f"the event is too large for Kafka: {exc.message}", field="data", event_id=event.id
            ) from None
        except DeliveryError as exc:
            raise _unacknowledged(event, exc) from None

    async def _write_all(self, events: list[CloudEvent]) -> list[EventCenterError | None]:
        """The events of a batch sent together, then one wait for all their acknowledgements with
        one deadline (not a timer per event); what Kafka did not acknowledge by then is a 503 of
        its own event. Metrics are counted once per (type, outcome)."""
        if not events:
            return []
        sends = [asyncio.ensure_future(self._send(event)) for event in events]
        try:
            _, late = await asyncio.wait(sends, timeout=self._settings.produce_timeout + 1)
        finally:
            for send in sends:
                send.cancel()  # no-op for the finished ones
        outcomes: list[EventCenterError | None] = []
        for event, send in zip(events, sends, strict=True):
            if send in late:
                outcomes.append(_unacknowledged(event, TimeoutError("no acknowledgement in time")))
                continue
            error = send.exception()
            if error is not None and not isinstance(error, EventCenterError):
                raise error  # a crash, as it would be outside a batch (500)
            outcomes.append(error if isinstance(error, EventCenterError) else None)
        counts = Counter(
            (self._type_label(event.type), "accepted" if error is None else error.code)
            for event, error in zip(events, outcomes, strict=True)
        )
        for (label, outcome), count in counts.items():
            metrics.REQUESTS.labels(type=label, outcome=outcome).inc(count)
        return outcomes

    async def _batch(self, sender: Sender, items: list[Item]) -> Answer:
        """Every event is checked before any is written: an invalid one refuses the whole batch
        (nothing half-written). Only Kafka failures while writing can split a batch (207)."""
        if len(items) > self._settings.max_batch_events:
            raise TooLarge(
                f"the batch has {len(items)} events, the limit is {self._settings.max_batch_events}", field=""
            )
        checked: list[CloudEvent | EventCenterError] = []
        for item in items:
            try:
                checked.append(self._validated(sender, item))
            except EventCenterError as exc:
                checked.append(exc)
        refused = [e for e in checked if isinstance(e, EventCenterError)]
        if refused:
            results = [
                _result(item, e if isinstance(e, EventCenterError) else NOT_WRITTEN)
                for item, e in zip(items, checked, strict=True)
            ]
            statuses = {e.status for e in refused}
            status = statuses.pop() if len(statuses) == 1 else 400
            message = f"{len(refused)} of {len(items)} events are invalid; no event of the batch was written"
            body = {"error": "batch_refused", "message": message, "accepted": 0, "rejected": len(items)}
            return Answer(status, {**body, "results": results})
        events = [e for e in checked if isinstance(e, CloudEvent)]
        outcomes = await self._write_all(events)
        results = [_result(item, error) for item, error in zip(items, outcomes, strict=True)]
        for result, event in zip(results, events, strict=True):
            found = self._warnings(event)
            if found:
                result["warnings"] = found
        rejected = [e for e in outcomes if e is not None]
        body = {"accepted": len(items) - len(rejected), "rejected": len(rejected), "results": results}
        if not rejected:
            return Answer(202, body)
        if all(e.status == 503 for e in rejected) and len(rejected) == len(items):
            first = rejected[0]
            error = {"error": first.code, "message": first.message, "problems": [], "retryable": True}
            return Answer(503, {**body, **error}, self._retry_after())
        return Answer(207, body)


class NotWritten(EventCenterError, status=424, code="not_written"):
    """A valid event of a batch that was refused whole because another event is invalid (424)."""


NOT_WRITTEN = NotWritten("not written: another event of the batch is invalid")


def _unacknowledged(event: CloudEvent, exc: Exception) -> Unavailable:
    log.warning("ingest_not_acknowledged", event_id=event.id, error=str(exc))
    return Unavailable(
        "Kafka did not acknowledge the event; it was not accepted, retry later", event_id=event.id
    )


def _approved_by(event: CloudEvent, sender: Sender) -> CloudEvent:
    """An approval records who gave it: ``data.by`` is the person's name (whatever the body said)."""
    data = dict(event.data) if isinstance(event.data, Mapping) else {}
    if sender.person is not None:
        data["by"] = sender.person.name
        data["by_identity"] = sender.person.actor()
    return event.model_copy(update={"data": data})


def _result(item: Item, error: EventCenterError | None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": item.index, "id": item.id, "source": item.source}
    if error is None:
        out["status"] = 202
    else:
        out.update(
            {
                "status": error.status,
                "error": error.code,
                "message": error.message,
                "retryable": error.retryable,
            }
        )
        if error.problems:
            out["problems"] = error.problems
    return out
