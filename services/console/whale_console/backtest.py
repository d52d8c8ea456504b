"""Backtest a rule in the console: what it would have fired on over stored events, per time bucket.

The rule engine's ``whale rules test`` reads Elasticsearch itself; the console reads only the event
center's API, so it pages ``GET /events`` (``kind=event`` of ``whale.events``, newest first) over
the window, at most :data:`CAP` events (the page says when it stopped there), and runs the worker's
matching (:class:`whale.rules.ruleset.RuleSet`) over them oldest first. A rule with a ``throttle``
gets its key rendered per event and a token bucket per key, with event times as the clock, so the
page shows what the throttle would have suppressed (as the engine's backtest does). A disabled rule
is tried as if enabled. ``changed`` (alert state kept by the engine) is not replayed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from whale import topics
from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.rules import templating
from whale.rules.model import Rule, RuleError, parse_duration, validate_rule
from whale.rules.paths import event_context
from whale.rules.ruleset import RuleSet
from whale_console.api import Api
from whale_console.rulebook import rule_fields

CAP = 5000
PAGE = 500
BUCKETS = 24
WINDOWS = ("1h", "24h", "7d")
LONGEST = timedelta(days=31)


@dataclass
class Result:
    """What the rule would have done over ``start`` .. ``end``."""

    start: datetime
    end: datetime
    scanned: int = 0
    matched: int = 0
    fired: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    suppressed: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    render_failures: int = 0
    unreadable: int = 0
    capped: bool = False
    error: str = ""

    @property
    def would_fire(self) -> int:
        return sum(self.fired)

    @property
    def would_suppress(self) -> int:
        return sum(self.suppressed)

    @property
    def bucket_seconds(self) -> float:
        return (self.end - self.start).total_seconds() / BUCKETS

    def bucket_of(self, when: datetime | None) -> int:
        if when is None:
            return BUCKETS - 1
        index = int((when - self.start).total_seconds() // self.bucket_seconds)
        return min(max(index, 0), BUCKETS - 1)


def window(text: str) -> timedelta:
    """``1h``, ``24h``, ``7d`` (any duration up to 31 days); ValueError naming why."""
    seconds = parse_duration(text.strip())
    if seconds <= 0 or timedelta(seconds=seconds) > LONGEST:
        raise ValueError("since must be more than 0 and at most 31 days")
    return timedelta(seconds=seconds)


async def stored(api: Api, start: datetime, end: datetime, cap: int = CAP) -> tuple[list[Any], bool, str]:
    """(stored events of ``whale.events`` in the window, newest first, at most ``cap``; capped; error)."""
    params: dict[str, Any] = {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "kind": "event",
        "topic": topics.EVENTS,
        "size": PAGE,
    }
    found: list[Any] = []
    while True:
        answer = await api.maybe("/events", params)
        if not answer.ok:
            return found, False, answer.message
        body = answer.body if isinstance(answer.body, dict) else {}
        page = body.get("events")
        found.extend(page if isinstance(page, list) else [])
        after = body.get("next")
        if len(found) >= cap:
            return found[:cap], len(found) > cap or bool(after), ""
        if not after or not page:
            return found, False, ""
        params["after"] = after


def _bucket(state: dict[str, float], capacity: int, refill: float, now: float) -> bool:
    """Take a token at ``now`` from the bucket ``state`` (tokens, at); False when none is left."""
    tokens = (
        float(capacity)
        if not state
        else min(float(capacity), state["tokens"] + max(0.0, now - state["at"]) * refill)
    )
    allowed = tokens >= 1.0
    state.update(tokens=tokens - 1.0 if allowed else tokens, at=now)
    return allowed


def simulate(document: dict[str, Any], found: list[Any], start: datetime, end: datetime) -> Result:
    """Run the rule ``document`` over the stored events ``found`` (any order), oldest first."""
    result = Result(start, end)
    try:
        rule: Rule = validate_rule(rule_fields(document)).model_copy(update={"enabled": True})
    except RuleError as exc:
        result.error = f"the rule is not valid: {exc}"
        return result
    rules = RuleSet()
    rules.set_directory_rules({rule.id: rule})
    events = []
    for doc in found:
        try:
            events.append(CloudEvent.from_structured(doc.get("event") if isinstance(doc, dict) else None))
        except EventError:
            result.unreadable += 1
    events.sort(key=lambda e: e.time or end)
    buckets: dict[str, dict[str, float]] = {}
    for event in events:
        result.scanned += 1
        ctx = event_context(event)
        if not rules.match(ctx):
            continue
        result.matched += 1
        slot = result.bucket_of(event.time)
        if rule.throttle is not None:
            try:
                key = templating.render(rule.throttle.key, ctx) if rule.throttle.key else ""
            except templating.TemplateError:
                result.render_failures += 1
                continue
            capacity, refill = rule.throttle.bucket()
            when = (event.time or end).astimezone(UTC).timestamp()
            if not _bucket(buckets.setdefault(key, {}), capacity, refill, when):
                result.suppressed[slot] += 1
                continue
        result.fired[slot] += 1
    return result


async def backtest(api: Api, document: dict[str, Any], since: timedelta, cap: int = CAP) -> Result:
    """The rule ``document`` over the stored events of the last ``since``."""
    end = datetime.now(UTC)
    start = end - since
    found, capped, error = await stored(api, start, end, cap)
    result = simulate(document, found, start, end)
    result.capped = capped
    result.error = result.error or error
    return result
