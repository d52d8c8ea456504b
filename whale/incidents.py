"""Incidents: which problem an event belongs to, and how to name it for a person.

One definition shared by the rule engine (its ``whale.rule.throttled`` and ``whale.rule.render_failed``
notices carry the :func:`reference` of the event that caused them) and the to-do stage (one to-do per
incident: :func:`incident_key` merges, :func:`title` names it).

- An **alert** (an event with the ``alertstate`` extension, set by the adapters' alert lifecycle:
  ``firing`` | ``updated`` | ``resolved``) belongs to the incident of its identity: source + subject
  (Alertmanager's fingerprint), whatever its type or episode, so a resolution closes and a re-firing
  reopens the same to-do.
- Any other event belongs to ``type + subject`` (the to-do stage's configurable merge keys refine it).

A title says what and where: ``HostOutOfDiskSpace on vm-web-01: Host out of disk space (instance
vm-web-01:9100)`` (alert name, host, summary annotation); a plain event's ``title``/``summary``/
``message`` field when it has one, else its type and subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whale.cloudevent import CloudEvent
from whale.correlation import correlation_id

ALERT_STATE = "alertstate"
ALERT_STATES = ("firing", "updated", "resolved")
HOST_LABELS = ("instance", "host", "hostname", "nodename", "node")
_TITLE_FIELDS = ("title", "summary", "message")
_MAX_TITLE = 300


def alert_state(event: CloudEvent) -> str | None:
    """``firing``, ``updated`` or ``resolved`` for an alert lifecycle event, else None."""
    state = event.extensions.get(ALERT_STATE)
    return state if isinstance(state, str) and state in ALERT_STATES else None


def incident_key(event: CloudEvent) -> str:
    """The default identity of the problem ``event`` is about (see the module docstring)."""
    if alert_state(event) is not None:
        return f"alert|{event.source}|{event.subject or ''}"
    return f"{event.type}|{event.subject or ''}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def host_of(event: CloudEvent) -> str | None:
    """The host an event is about: the enriched inventory host's name, else a host-like label."""
    data = _mapping(event.data)
    enriched = _mapping(data.get("host")).get("name")
    if isinstance(enriched, str) and enriched:
        return enriched
    labels = _mapping(data.get("labels"))
    for name in HOST_LABELS:
        value = labels.get(name)
        if isinstance(value, str) and value:
            return value
    value = data.get("host")
    return value if isinstance(value, str) and value else None


def title(event: CloudEvent) -> str:
    """What and where, for a person (never a bare type and fingerprint when the event says more)."""
    data = _mapping(event.data)
    labels, annotations = _mapping(data.get("labels")), _mapping(data.get("annotations"))
    what = labels.get("alertname")
    where = host_of(event)
    summary = annotations.get("summary") or annotations.get("description")
    if not summary:
        summary = next((data[f] for f in _TITLE_FIELDS if isinstance(data.get(f), str) and data[f]), None)
    if not isinstance(what, str) or not what:
        what = event.type
    text = what + (f" on {where}" if where else (f" on {event.subject}" if event.subject else ""))
    if isinstance(summary, str) and summary.strip():
        text += ": " + summary.strip().splitlines()[0]
    return text[:_MAX_TITLE]


def reference(event: CloudEvent) -> dict[str, Any]:
    """What a notice about ``event`` carries so the to-do stage can join (or open) its incident."""
    return {
        "key": incident_key(event),
        "title": title(event),
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time_text(),
        "correlationid": correlation_id(event),
        ALERT_STATE: alert_state(event),
    }
