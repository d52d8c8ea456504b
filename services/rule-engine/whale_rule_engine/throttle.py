"""The token bucket that keeps an alert storm from creating a hundred identical tasks.

Pure functions over a JSON-able state so the same code runs in the worker (state in a Faust table
with a changelog) and in ``whale rules test`` (state in a dict, time from event times).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

BucketState = dict[str, Any]
PARTITION = "p"
"""State field the worker adds: the table partition the bucket was written to (see :func:`sweep`)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the bucket said about one trigger."""

    allowed: bool
    state: BucketState
    suppressed: int
    """Triggers suppressed since the last allowed one (this one included when not allowed)."""
    next_allowed: float
    """Epoch seconds when the next trigger would pass."""
    redelivered: bool = False
    """The same trigger (idempotency key) passed before: let it through again, spend nothing."""


def decide(
    state: BucketState | None,
    *,
    capacity: int,
    refill_per_second: float,
    now: float,
    idempotency_key: str,
    remember: int = 16,
) -> Decision:
    """Take one token for ``idempotency_key`` at time ``now`` (epoch seconds)."""
    recent: list[str] = list((state or {}).get("recent", []))
    if state is not None and idempotency_key in recent:
        tokens = float(state.get("tokens", 0.0))
        return Decision(True, state, 0, _next(now, tokens, refill_per_second), redelivered=True)
    if state is None:
        tokens, suppressed = float(capacity), 0
    else:
        elapsed = max(0.0, now - float(state.get("at", now)))
        tokens = min(float(capacity), float(state.get("tokens", 0.0)) + elapsed * refill_per_second)
        suppressed = int(state.get("suppressed", 0))
    if tokens >= 1.0:
        tokens -= 1.0
        recent = ([*recent, idempotency_key])[-remember:] if remember else []
        new = {"tokens": tokens, "at": now, "suppressed": 0, "recent": recent}
        new["full"] = _full(now, tokens, capacity, refill_per_second)
        return Decision(True, new, 0, _next(now, tokens, refill_per_second))
    suppressed += 1
    new = {"tokens": tokens, "at": now, "suppressed": suppressed, "recent": recent}
    new["full"] = _full(now, tokens, capacity, refill_per_second)
    return Decision(False, new, suppressed, _next(now, tokens, refill_per_second))


def expired(state: BucketState, *, now: float, grace: float) -> bool:
    """True when ``state`` is as good as no bucket at ``now``: it has refilled to the capacity it
    was written with (``full``), so the next trigger passes either way and the suppressed count
    would reset, and its last write (hence every remembered idempotency key) is at least ``grace``
    seconds old, so a redelivery that would have passed free is no longer expected. States written
    before ``full`` was recorded never expire (they gain it on their next decision)."""
    full = state.get("full")
    if not isinstance(full, int | float):
        return False
    return now >= full and now - float(state.get("at", now)) >= grace


def sweep(buckets: MutableMapping[str, BucketState], *, partition: int, now: float, grace: float) -> int:
    """Delete the :func:`expired` buckets written to ``partition`` (their ``p`` field) from
    ``buckets``; returns how many. In the worker ``buckets`` is the Faust table and this runs while
    an event of ``partition`` is current, so each delete tombstones that partition's changelog."""
    doomed = [
        key
        for key, state in list(buckets.items())
        if isinstance(state, dict)
        and state.get(PARTITION) == partition
        and expired(state, now=now, grace=grace)
    ]
    for key in doomed:
        del buckets[key]
    return len(doomed)


def _full(now: float, tokens: float, capacity: int, refill_per_second: float) -> float | None:
    """Epoch seconds when the bucket is back at ``capacity`` (None: never, without a refill)."""
    if tokens >= capacity:
        return now
    if refill_per_second <= 0:
        return None
    return now + (capacity - tokens) / refill_per_second


def _next(now: float, tokens: float, refill_per_second: float) -> float:
    if tokens >= 1.0:
        return now
    return now + (1.0 - tokens) / refill_per_second
