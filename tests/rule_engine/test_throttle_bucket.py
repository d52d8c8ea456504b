"""The token bucket: capacity, refill, once_within, suppressed counts and redeliveries."""

from __future__ import annotations

from whale_rule_engine.throttle import decide


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
