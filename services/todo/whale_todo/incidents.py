"""One incident, one to-do: alerts, their resolution, and what automation could not do about them.

Decisions of the to-do stage (:mod:`whale_todo.stage`) for

- **alerts** (events with the ``alertstate`` extension): an unhandled alert opens one to-do per
  incident (:func:`whale.incidents.incident_key`: source + fingerprint, or the type's configured merge
  key); its updates merge into it (count, latest details, history); its **resolution** closes it
  (``resolved_by`` = the alert's source, whether or not a rule handled the alert); a **re-firing**
  (a new episode) reopens the latest item of the incident;
- **notices** on ``whale.results`` that something matched but nothing was done, so a person must
  look: ``whale.rule.render_failed`` (params could not be rendered; the dead letter stays),
  ``whale.rule.throttled`` (a recurrence held back while the problem still fires) and the final
  failures of a run (``whale.action.failed|timed_out|abandoned``, ``whale.workflow.failed``). Each
  opens, updates or reopens the to-do of its incident (a notice names it, see
  :func:`whale.incidents.reference`; a run failure finds it through its correlation id, i.e. the
  alert episode that caused the run).

Every change appends to the item's ``history`` (newest last, bounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from whale.cloudevent import CloudEvent
from whale.correlation import correlation_id
from whale.incidents import alert_state, incident_key, title
from whale.store import Batch
from whale_todo.items import CREATED, RESOLVED, UPDATED, Change, event_ref, new_item, now_text
from whale_todo.store import episode_incident, remember_episode

RENDER_FAILED = "whale.rule.render_failed"
THROTTLED = "whale.rule.throttled"
RUN_FAILED = (
    "whale.action.failed",
    "whale.action.timed_out",
    "whale.action.abandoned",
    "whale.workflow.failed",
)
NOTICES = (RENDER_FAILED, THROTTLED, *RUN_FAILED)
HISTORY_LIMIT = 50


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def entry(kind: str, text: str, event: CloudEvent, at: str) -> dict[str, Any]:
    """One line of an item's ``history``."""
    return {
        "at": at,
        "kind": kind,
        "text": text,
        "event": {"id": event.id, "type": event.type, "source": event.source},
    }


def notice_text(event: CloudEvent) -> tuple[str, str]:
    """(history kind, what a person reads) for a notice."""
    data = _mapping(event.data)
    if event.type == THROTTLED:
        return "throttled", (
            f"rule {data.get('rule_id')} held back a recurrence (suppressed {data.get('suppressed')}, "
            f"next allowed {data.get('next_allowed')}): the problem is still there and nothing ran"
        )
    if event.type == RENDER_FAILED:
        return "render_failed", (
            f"rule {data.get('rule_id')} matched but its params could not be rendered, so nothing ran: "
            f"{data.get('reason')}"
        )
    target = _mapping(data.get("target"))
    error = _mapping(data.get("error"))
    what = f"{target.get('kind', 'action')} {target.get('name', '?')}"
    outcome = event.type.rsplit(".", 1)[-1].replace("_", " ")
    return "run_failed", f"{what} {outcome}: {error.get('message', 'no reason given')}"


def notice_incident(event: CloudEvent, known: Mapping[str, Any] | None) -> tuple[str, str, str | None]:
    """(key, title, alertstate) of the incident a notice is about. ``known``: the incident the
    notice's alert episode was seen in (for run failures, which do not name it)."""
    ref = _mapping(_mapping(event.data).get("incident"))
    if isinstance(ref.get("key"), str) and ref["key"]:
        state = ref.get("alertstate")
        return ref["key"], str(ref.get("title") or ref["key"]), state if isinstance(state, str) else None
    if known is not None:
        return str(known["key"]), str(known["title"]), "firing"
    kind, text = notice_text(event)
    return f"{kind}|{correlation_id(event)}", text, None


def alert_key(event: CloudEvent, rendered: str | None) -> str:
    """An alert's merge key: the type's configured merge key (rendered) or the incident key."""
    return f"alert|{rendered}" if rendered else incident_key(event)


class Book(Protocol):
    """What these decisions need of the to-do stage's :class:`~whale_todo.stage.TodoBook`."""

    @property
    def batch(self) -> Batch: ...

    @property
    def seen_limit(self) -> int: ...

    def open_item(self, key: str) -> dict[str, Any] | None: ...

    def last_item(self, key: str) -> dict[str, Any] | None: ...

    def load(self, item: Mapping[str, Any]) -> None: ...

    def merge_key(self, event: CloudEvent) -> str: ...


def _seen(book: Book, item: Mapping[str, Any], event_id: str) -> list[str]:
    return [*item.get("seen", []), event_id][-book.seen_limit :]


def _history(item: Mapping[str, Any], kind: str, text: str, event: CloudEvent, at: str) -> list[Any]:
    return [*item.get("history", []), entry(kind, text, event, at)][-HISTORY_LIMIT:]


def alert(book: Book, event: CloudEvent, handled: bool) -> Change | None:
    """An alert lifecycle event: remember its episode's incident; an unhandled firing or update
    opens/merges/reopens the incident's to-do; a resolution closes it (handled or not)."""
    key, episode = book.merge_key(event), correlation_id(event)
    if alert_state(event) == "resolved":
        remember_episode(book.batch, episode, None)
        return resolve_by_source(book, event, key, episode)
    name = title(event)
    if episode_incident(book.batch, episode) != {"key": key, "title": name}:
        remember_episode(book.batch, episode, {"key": key, "title": name})
    if handled:
        return None
    state = str(alert_state(event))
    return incident(book, event, key=key, title=name, kind=state, text=f"alert {state}: {name}")


def notice(book: Book, event: CloudEvent) -> Change | None:
    """A render failure, throttled recurrence or failed run: onto its incident's to-do."""
    known = episode_incident(book.batch, correlation_id(event))
    key, name, _ = notice_incident(event, known)
    kind, text = notice_text(event)
    return incident(book, event, key=key, title=name, kind=kind, text=text)


def resolve_by_source(book: Book, event: CloudEvent, key: str, episode: str) -> Change | None:
    """The alert resolved: its open to-do is resolved, by the alert's source."""
    existing = book.open_item(key)
    if existing is None or event.id in existing.get("seen", []):
        return None
    at = now_text()
    item = {
        **existing,
        "status": "resolved",
        "resolved_by": event.source,
        "resolution": f"resolved at the source ({event.type} at {event.time_text() or at})",
        "resolved_episode": episode,
        "last_event": event_ref(event),
        "updated_at": at,
        "seen": _seen(book, existing, event.id),
        "history": _history(existing, "resolved", "resolved at the source", event, at),
    }
    book.load(item)
    return Change(item, RESOLVED, "resolved_by_source", event.source)


def incident(book: Book, event: CloudEvent, *, key: str, title: str, kind: str, text: str) -> Change | None:
    """Open the incident's to-do, merge into the open one, or reopen its latest resolved one (a
    new episode; a notice about an episode that already resolved is only recorded)."""
    at = now_text()
    existing = book.open_item(key)
    latest = existing or book.last_item(key)
    if latest is None or (existing is None and not latest.get("incident")):
        origin = "unhandled" if alert_state(event) is not None else kind
        item = new_item(event, key=key, title=title, kind=event.type, origin=origin, details=event.data)
        item.update(incident=True, reopened=0, history=[entry(kind, text, event, at)])
        book.load(item)
        return Change(item, CREATED, "created")
    if event.id in latest.get("seen", []):
        return None  # redelivered
    item = {
        **latest,
        "count": int(latest.get("count", 1)) + 1,
        "last_event": event_ref(event),
        "updated_at": at,
        "seen": _seen(book, latest, event.id),
        "history": _history(latest, kind, text, event, at),
    }
    if alert_state(event) is not None:  # the alert's latest state (value, annotations)
        item.update(title=title, details=event.data)
    change = "merged"
    if existing is None and latest.get("resolved_episode") != correlation_id(event):
        item.update(
            status="open",
            claimed_by=None,
            resolved_by=None,
            resolution=None,
            resolved_episode=None,
            correlationid=correlation_id(event),
            reopened=int(latest.get("reopened", 0)) + 1,
        )
        change = "reopened"
    elif existing is None:
        change = "recorded"  # that episode is over: kept in the history, not reopened
    book.load(item)
    return Change(item, UPDATED, change)
