"""The token bucket: capacity, refill, once_within, suppressed counts and redeliveries."""

from __future__ import annotations

import pytest
from whale_rule_engine.throttle import PARTITION, BucketState, decide, expired, sweep


def test_burst_passes_capacity_then_suppresses_and_counts() -> None:
    """A burst gets `capacity` passes; each further trigger is suppressed with a running count."""
    state = None
    outcomes = []
    for n in range(5):
        d = decide(state, capacity=2, refill_per_second=0.1, now=1000.0, idempotency_key=f"k{n}")
        state = d.state
        outcomes.append((d.allowed, d.suppressed))
    assert outcomes == [(True, 0), (True, 0), (False, 1), (False, 2), (False, 3)]
    last = decide(state, capacity=2, refill_per_second=0.1, now=1000.0, idempotency_key="k9")
    assert last.next_allowed == 1010.0


def test_tokens_refill_with_time_up_to_capacity() -> None:
    """Tokens come back at refill_per_second, never above capacity; suppressed resets on a pass."""
    d = decide(None, capacity=1, refill_per_second=1 / 600, now=0.0, idempotency_key="a")
    d = decide(d.state, capacity=1, refill_per_second=1 / 600, now=599.0, idempotency_key="b")
    assert not d.allowed
    d = decide(d.state, capacity=1, refill_per_second=1 / 600, now=601.0, idempotency_key="c")
    assert d.allowed and d.suppressed == 0
    d = decide(d.state, capacity=1, refill_per_second=1 / 600, now=100_000.0, idempotency_key="d")
    assert d.allowed and d.state["tokens"] == 0.0


def test_a_redelivered_trigger_passes_again_without_spending() -> None:
    """The same idempotency key after a crash passes again (the executor dedupes), spending nothing."""
    d = decide(None, capacity=1, refill_per_second=0.001, now=0.0, idempotency_key="same")
    again = decide(d.state, capacity=1, refill_per_second=0.001, now=1.0, idempotency_key="same")
    assert again.allowed and again.redelivered and again.state == d.state
    other = decide(again.state, capacity=1, refill_per_second=0.001, now=1.0, idempotency_key="other")
    assert not other.allowed


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    """Workers' clocks differ a little: a past `now` adds no tokens."""
    d = decide(None, capacity=1, refill_per_second=1.0, now=100.0, idempotency_key="a")
    d = decide(d.state, capacity=1, refill_per_second=1.0, now=50.0, idempotency_key="b")
    assert not d.allowed


def test_a_bucket_expires_once_refilled_and_idle_past_the_grace() -> None:
    """Refilled to capacity and last written at least `grace` ago: as good as no bucket."""
    d = decide(None, capacity=2, refill_per_second=0.1, now=0.0, idempotency_key="a")
    d = decide(d.state, capacity=2, refill_per_second=0.1, now=0.0, idempotency_key="b")
    assert d.state["full"] == 20.0  # two tokens back at 0.1/s
    assert not expired(d.state, now=19.0, grace=5.0)  # not refilled yet
    assert not expired(d.state, now=20.0, grace=30.0)  # refilled, but a redelivery may still come
    assert expired(d.state, now=30.0, grace=30.0)
    suppressed = decide(d.state, capacity=2, refill_per_second=0.1, now=1.0, idempotency_key="c")
    assert not suppressed.allowed and suppressed.state["full"] == pytest.approx(20.0)


def test_buckets_written_before_expiry_was_recorded_never_expire() -> None:
    """A state without `full` (an older worker's) is kept; it gains `full` on its next decision."""
    assert not expired({"tokens": 1.0, "at": 0.0, "suppressed": 0, "recent": []}, now=1e9, grace=0.0)


def test_a_swept_bucket_behaves_like_a_fresh_one() -> None:
    """After the sweep deletes it, the key decides exactly as a never-seen key would."""
    table: dict[str, BucketState] = {}
    d = decide(None, capacity=3, refill_per_second=1.0, now=0.0, idempotency_key="a")
    table["r\x1fweb-1"] = {**d.state, PARTITION: 1}
    table["r\x1fweb-2"] = {
        **decide(None, capacity=3, refill_per_second=1.0, now=99.0, idempotency_key="x").state,
        PARTITION: 1,
    }
    table["r\x1fweb-3"] = {**d.state, PARTITION: 0}  # another partition's: its tombstone is not ours to write
    assert sweep(table, partition=1, now=100.0, grace=60.0) == 1
    assert set(table) == {"r\x1fweb-2", "r\x1fweb-3"}
    after = decide(table.get("r\x1fweb-1"), capacity=3, refill_per_second=1.0, now=100.0, idempotency_key="b")
    fresh = decide(None, capacity=3, refill_per_second=1.0, now=100.0, idempotency_key="b")
    assert after == fresh
    kept = decide(d.state, capacity=3, refill_per_second=1.0, now=100.0, idempotency_key="b")
    assert (kept.allowed, kept.suppressed, kept.state["tokens"]) == (
        fresh.allowed,
        fresh.suppressed,
        fresh.state["tokens"],
    )
