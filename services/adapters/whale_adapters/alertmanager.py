"""Prometheus Alertmanager webhook (payload version 4): one CloudEvent per alert.

type ``prometheus.alert.firing`` or ``prometheus.alert.resolved``; subject = the alert's fingerprint;
data = status, fingerprint, labels, annotations, startsAt, endsAt, generatorURL (plus receiver and
externalURL; an update also ``changed`` and ``previous``, see :func:`whale_adapters.lifecycle.change_fields`); time = startsAt (firing) or endsAt (resolved). The lifecycle (``alertstate`` firing |
updated | resolved, ``correlationid`` = the episode, ids stable across re-sends) comes from
:mod:`whale_adapters.lifecycle`: a re-sent notification with nothing changed gets the same id and the
event center's dedupe drops it; a changed value is an ``updated`` event of the same episode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale_adapters.errors import PayloadError
from whale_adapters.lifecycle import AlertBook, Step, change_fields, lifecycle_extensions

FIRING = "prometheus.alert.firing"
RESOLVED = "prometheus.alert.resolved"
TYPES = {"firing": FIRING, "resolved": RESOLVED}
ADAPTER = "alertmanager"
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: str) -> datetime | None:
    """RFC 3339 as Alertmanager writes it (nanoseconds allowed); None for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    cleaned = _FRACTION.sub(r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(cleaned)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert of a notification: its event and where it stands in its episode."""

    event: CloudEvent
    identity: str
    step: Step


def _fail(field: str, message: str) -> PayloadError:
    return PayloadError(
        f"alertmanager payload: {field}: {message}", [{"field": field, "message": message}], field=field
    )


def alert_events(payload: Any, *, source: str, book: AlertBook | None = None) -> list[CloudEvent]:
    """The events of one webhook notification (without a book every episode is new)."""
    return [a.event for a in observe(payload, source=source, book=book)]


def observe(payload: Any, *, source: str, book: AlertBook | None = None) -> list[AlertEvent]:
    """The alerts of one webhook notification; :class:`PayloadError` names the bad field."""
    book = book or AlertBook(ADAPTER, source)
    if not isinstance(payload, dict):
        raise _fail("", "must be a JSON object")
    if str(payload.get("version")) != "4":
        raise _fail("version", f"only payload version 4 is supported, got {payload.get('version')!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise _fail("alerts", "must be a list")
    events: list[AlertEvent] = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(alert, dict):
            raise _fail(where, "must be an object")
        status = alert.get("status")
        if status not in TYPES:
            raise _fail(f"{where}.status", f"must be 'firing' or 'resolved', got {status!r}")
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise _fail(f"{where}.fingerprint", "required non-empty string")
        for name in ("labels", "annotations"):
            if not isinstance(alert.get(name, {}), dict):
                raise _fail(f"{where}.{name}", "must be an object")
        starts_at, ends_at = str(alert.get("startsAt", "")), str(alert.get("endsAt", ""))
        try:
            when = parse_time(ends_at if status == "resolved" else starts_at)
        except ValueError:
            field = "endsAt" if status == "resolved" else "startsAt"
            raise _fail(f"{where}.{field}", "not an RFC 3339 timestamp") from None
        data = {
            "status": status,
            "fingerprint": fingerprint,
            "labels": alert.get("labels", {}),
            "annotations": alert.get("annotations", {}),
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": str(alert.get("generatorURL", "")),
            "receiver": str(payload.get("receiver", "")),
            "externalURL": str(payload.get("externalURL", "")),
        }
        content = {"labels": data["labels"], "annotations": data["annotations"]}
        step = book.step(
            fingerprint, starts_at, resolved=status == "resolved", content=content, ended=ends_at
        )
        data.update(change_fields(step, content))
        attrs: dict[str, Any] = {
            "id": step.event_id,
            "subject": fingerprint,
            "extensions": lifecycle_extensions(step),
        }
        if when is not None:
            attrs["time"] = when
        try:
            event = CloudEvent.create(type=TYPES[status], source=source, data=data, **attrs)
            events.append(AlertEvent(event, fingerprint, step))
        except EventError as exc:
            raise PayloadError(f"alertmanager payload: {where}: {exc.message}", exc.problems) from None
    return events
