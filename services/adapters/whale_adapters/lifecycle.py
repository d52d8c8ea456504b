"""Alert lifecycle: one alert episode is one entity, firing -> updated (each change) -> resolved.

An *episode* is an alert identity (Alertmanager's fingerprint, or a generic webhook's configured
identity field) plus the time it started firing. Every event of an episode carries

- ``correlationid``: the episode's id, derived from (source, identity, start) so that the incident's
  trace (firing, updates, the actions they caused, the resolution) is one chain, even across restarts;
- ``alertstate``: ``firing`` (first notification of the episode), ``updated`` (its labels or
  annotations changed since the last event; each change is a new event) or ``resolved``.

What changed: an ``updated`` event's data carries ``changed`` (the dotted names of the values that
differ from the episode's previous event, e.g. ``["annotations.description"]``) and ``previous``
(their earlier values, same shape: ``{"annotations": {"description": "..."}}``), so rules can match
on a changed value (``changed: annotations.description`` in a rule, or ``data.previous.…``).

How "updated" is known: the event id hashes the episode, its revision and the alert's content, so a
notification re-sent with nothing changed (repeat interval, retries, HA peers) gets the same id and the
event center's dedupe stage drops it, while a changed value gets a new id. The revision and the last
content hash of every open episode are kept on the compacted ``whale.adapters.state`` topic (key
``alert:<adapter>:<identity>``), written after the event was acknowledged, so a restarted adapter still
tells an update from a first firing. A resolution deletes the record (the topic stays bounded).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from whale import topics
from whale.cloudevent import CloudEvent
from whale.compacted import delete, put
from whale.correlation import CORRELATION_ID
from whale.incidents import ALERT_STATE
from whale.producer import EventProducer
from whale_adapters.poller import StateSource, content_hash

STATE_TYPE = "whale.adapter.alert.state"
State = Literal["firing", "updated", "resolved"]


def state_key(adapter: str, identity: str) -> str:
    return f"alert:{adapter}:{identity}"


def episode_id(source: str, identity: str, started: str) -> str:
    """The correlation id of one firing episode (stable: the same on every replica and after restarts)."""
    seed = f"{source}|{identity}|{started}"
    return "alert-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Episode:
    """What is kept about an open episode."""

    identity: str
    started: str
    state: State
    revision: int
    digest: str
    content: Any = None  # the labels/annotations (or webhook content) last emitted

    @classmethod
    def from_record(cls, record: CloudEvent | None) -> Episode | None:
        data = record.data if record is not None else None
        if not isinstance(data, dict):
            return None
        try:
            state: State = "updated" if data["state"] == "updated" else "firing"
            if data["state"] not in ("firing", "updated"):
                return None
            identity, started, digest = str(data["identity"]), str(data["started"]), str(data["digest"])
            return cls(identity, started, state, int(data["revision"]), digest, data.get("content"))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Step:
    """How one notification of an alert fits its episode."""

    state: State
    revision: int
    correlation: str
    event_id: str
    episode: Episode | None  # the episode after this step (None once resolved)
    previous: Any = None  # on an update: the episode's content before it (see :func:`changes`)


class AlertBook:
    """The open episodes of one adapter (``alertmanager`` or ``webhook:<name>``)."""

    def __init__(
        self, adapter: str, source: str, state: StateSource | None = None, *, id_prefix: str = "am-"
    ) -> None:
        self.adapter = adapter
        self.source = source
        self._state = state
        self._prefix = id_prefix
        self._local: dict[str, Episode] = {}  # open episodes we wrote, ahead of the followed topic

    def current(self, identity: str) -> Episode | None:
        key = state_key(self.adapter, identity)
        if key in self._local:
            return self._local[key]
        return Episode.from_record(self._state.get(key)) if self._state is not None else None

    def step(
        self, identity: str, started: str | None, *, resolved: bool, content: Any, ended: str = ""
    ) -> Step:
        """Classify a notification (pure: nothing is recorded until :meth:`record`). Without
        ``started`` (a sender that does not say when the problem began) the open episode continues,
        or a new one starts now."""
        previous = self.current(identity)
        if started is None and previous is not None:
            started = previous.started
        elif started is None:  # a resolution of nothing open keeps a stable id (re-sends dedupe)
            started = "" if resolved else datetime.now(UTC).isoformat()
        correlation = episode_id(self.source, identity, started)
        digest = content_hash(content)  # labels and annotations (not endsAt, which moves on re-sends)
        same = previous is not None and previous.started == started
        if resolved:
            seed = f"{identity}|{started}|resolved|{ended}"
            return Step("resolved", 0, correlation, self._event_id(seed), None)
        state: State
        before = None
        if previous is None or not same:
            state, revision = "firing", 0
        elif previous.digest == digest:
            state, revision = previous.state, previous.revision  # a re-send: same id, deduped
        else:
            state, revision = "updated", previous.revision + 1
            before = previous.content
        episode = Episode(identity, started, state, revision, digest, _json(content))
        seed = f"{identity}|{started}|firing|{revision}|{digest}"
        return Step(state, revision, correlation, self._event_id(seed), episode, before)

    def _event_id(self, seed: str) -> str:
        return self._prefix + hashlib.sha256(seed.encode()).hexdigest()[:40]

    async def record(self, producer: EventProducer, identity: str, step: Step) -> None:
        """Persist the episode after its event was acknowledged (a resolution deletes it)."""
        key = state_key(self.adapter, identity)
        if step.episode is None:
            if self.current(identity) is not None:
                await delete(producer, topics.ADAPTER_STATE, key)
            self._local.pop(key, None)  # the tombstone reaches the followed view shortly
            return
        if self.current(identity) == step.episode:
            return  # a re-send: nothing new to write
        record = CloudEvent.create(
            type=STATE_TYPE,
            source=self.source,
            subject=key,
            data={
                "adapter": self.adapter,
                "identity": identity,
                "started": step.episode.started,
                "state": step.episode.state,
                "revision": step.episode.revision,
                "digest": step.episode.digest,
                "content": step.episode.content,
                "correlationid": step.correlation,
            },
        )
        await put(producer, topics.ADAPTER_STATE, key, record)
        self._local[key] = step.episode


def _json(value: Any) -> Any:
    """A JSON-safe copy (what the state record keeps)."""
    return json.loads(json.dumps(value, default=str))


def changes(previous: Any, current: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted name -> earlier value of every leaf that differs (objects are compared key by key;
    a key that appeared has the earlier value None)."""
    if isinstance(previous, dict) and isinstance(current, dict):
        out: dict[str, Any] = {}
        for key in sorted(set(previous) | set(current), key=str):
            out.update(changes(previous.get(key), current.get(key), f"{prefix}{key}."))
        return out
    return {} if previous == current else {prefix.rstrip("."): previous}


def change_fields(step: Step, content: Any) -> dict[str, Any]:
    """What an ``updated`` event's data gets: ``changed`` (names) and ``previous`` (earlier values)."""
    if step.state != "updated" or step.previous is None:
        return {}
    found = changes(step.previous, _json(content))
    previous: dict[str, Any] = {}
    for name, value in found.items():
        *parents, leaf = name.split(".")
        node = previous
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return {"changed": sorted(found), "previous": previous}


def lifecycle_extensions(step: Step) -> dict[str, str | int | bool]:
    return {CORRELATION_ID: step.correlation, ALERT_STATE: step.state}
