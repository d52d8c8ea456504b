"""Prometheus Alertmanager webhook (payload version 4): one CloudEvent per alert.

type ``prometheus.alert.firing`` or ``prometheus.alert.resolved``; subject = the alert's fingerprint;
data = status, fingerprint, labels, annotations, startsAt, endsAt, generatorURL (plus receiver and
externalURL); time = startsAt (firing) or endsAt (resolved). The id is derived from (fingerprint,
status, startsAt[, endsAt when resolved]), so when Alertmanager re-sends the same notification
(repeat_interval, retries, HA peers) the event gets the same id and the event center's dedupe drops it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale_adapters.errors import PayloadError

FIRING = "prometheus.alert.firing"
RESOLVED = "prometheus.alert.resolved"
TYPES = {"firing": FIRING, "resolved": RESOLVED}
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: str) -> datetime | None:
    """RFC 3339 as Alertmanager writes it (nanoseconds allowed); None for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    cleaned = _FRACTION.sub(r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(cleaned)


def alert_id(fingerprint: str, status: str, starts_at: str, ends_at: str) -> str:
    """Deterministic event id of one alert state change."""
    parts = [fingerprint, status, starts_at] + ([ends_at] if status == "resolved" else [])
    return "am-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _fail(field: str, message: str) -> PayloadError:
    return PayloadError(
        f"alertmanager payload: {field}: {message}", [{"field": field, "message": message}], field=field
    )


def alert_events(payload: Any, *, source: str) -> list[CloudEvent]:
    """The events of one webhook notification; :class:`PayloadError` names the bad field."""
    if not isinstance(payload, dict):
        raise _fail("", "must be a JSON object")
    if str(payload.get("version")) != "4":
        raise _fail("version", f"only payload version 4 is supported, got {payload.get('version')!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise _fail("alerts", "must be a list")
    events: list[CloudEvent] = []
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
        attrs: dict[str, Any] = {
            "id": alert_id(fingerprint, status, starts_at, ends_at),
            "subject": fingerprint,
        }
        if when is not None:
            attrs["time"] = when
        try:
            events.append(CloudEvent.create(type=TYPES[status], source=source, data=data, **attrs))
        except EventError as exc:
            raise PayloadError(f"alertmanager payload: {where}: {exc.message}", exc.problems) from None
    return events
