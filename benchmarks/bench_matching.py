"""Rule matching throughput in process: the same events against 10, 100, 1,000 and 10,000 rules
(plus one rule without any equality constraint, which every event is tested against).

Rules are shaped like real ones: most pin the event type (and a threshold or regex on data), some
pin a data field instead of the type, a few have no equality constraint at all (always tested).
Each event costs one hash lookup per rule shape plus its candidates, so throughput should not
fall with the number of rules (target: 10,000 rules within 2x of 10).
"""

from __future__ import annotations

import random
import time
from typing import Any

from whale_rule_engine.index import RuleIndex

from whale.cloudevent import CloudEvent
from whale.matching import event_context
from whale.rules import Rule, validate_rule

TITLE = "Rule matching (in process, indexed): events per second by number of rules"
SIZES = (10, 100, 1_000, 10_000)
EVENTS = 2_000
MIN_SECONDS = 0.3
ROUNDS = 5
LINEAR_SAMPLE = 200
LINEAR_BUDGET = 50_000  # rule evaluations for the no-index column


def make_rule(i: int) -> Rule:
    shape = i % 10
    if shape < 7:
        match: dict[str, Any] = {
            "all": [
                {"field": "type", "equals": f"bench.alert.{i}"},
                {"field": "data.value", "greater": 50},
                {"field": "data.host", "regex": r"^web-\d+$"},
            ]
        }
    elif shape < 9:
        match = {
            "all": [
                {"field": "data.service", "equals": f"svc-{i}"},
                {"field": "severity", "in": ["critical", "warning"]},
            ]
        }
    else:
        match = {
            "any": [
                {"field": "type", "equals": f"bench.other.{i}"},
                {
                    "all": [
                        {"field": "data.service", "equals": f"svc-{i}"},
                        {"field": "data.value", "less": 5},
                    ]
                },
            ]
        }
    return validate_rule(
        {
            "id": f"bench-{i:05d}",
            "match": match,
            "target": {"kind": "action", "name": "noop"},
            "params": {"host": "{{ data.host }}"},
        }
    )


CATCH_ALL = validate_rule(
    {
        "id": "bench-catch-all",
        "match": {"field": "data.host", "regex": "^db-"},
        "target": {"kind": "action", "name": "noop"},
    }
)


def make_events(count: int) -> list[dict[str, Any]]:
    """The same events for every size: types and services of the first 10 rules, plus misses."""
    rng = random.Random(42)
    events = []
    for n in range(count):
        i = rng.randrange(20)  # half hit rules 0..9 (present at every size), half match no rule
        event = CloudEvent.create(
            type=f"bench.alert.{i}" if i < 10 else f"bench.unknown.{i}",
            source="bench/matching",
            subject=f"web-{n % 7}",
            severity=rng.choice(["critical", "warning", "info"]),
            data={"value": rng.randrange(100), "host": f"web-{n % 7}", "service": f"svc-{rng.randrange(10)}"},
        )
        events.append(event_context(event))
    return events


def rate_once(index: RuleIndex, events: list[dict[str, Any]]) -> float:
    """Events per second over at least MIN_SECONDS."""
    done = 0
    started = time.perf_counter()
    while True:
        for ctx in events:
            index.match(ctx)
        done += len(events)
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return done / elapsed


def measure_linear(rules: list[Rule], events: list[dict[str, Any]]) -> float:
    """Events per second when every rule is tested (no index), for comparison."""
    sample = events[: max(5, min(LINEAR_SAMPLE, LINEAR_BUDGET // len(rules)))]
    started = time.perf_counter()
    for ctx in sample:
        for rule in rules:
            rule.condition.evaluate(ctx)
    return len(sample) / (time.perf_counter() - started)


def run() -> list[dict[str, object]]:
    events = make_events(EVENTS)
    sets = {size: [*(make_rule(i) for i in range(size)), CATCH_ALL] for size in SIZES}
    indexes = {size: RuleIndex(rules) for size, rules in sets.items()}
    best = dict.fromkeys(SIZES, 0.0)
    for _ in range(ROUNDS):  # sizes interleaved, best of ROUNDS: other load hits every size alike
        for size in SIZES:
            best[size] = max(best[size], rate_once(indexes[size], events))
    rows: list[dict[str, object]] = []
    for size in SIZES:
        index = indexes[size]
        candidates = sum(len(index.candidates(ctx)) for ctx in events) / len(events)
        rows.append(
            {
                "rules": size + 1,
                "rule shapes (lookups/event)": index.signatures,
                "candidates/event": round(candidates, 2),
                "events/s": best[size],
                "slowdown vs 10 rules": round(best[SIZES[0]] / best[size], 2),
                "no index: events/s": measure_linear(sets[size], events),
            }
        )
    return rows


def main() -> None:
    from benchmarks import format_table

    print(format_table(TITLE, run()))


if __name__ == "__main__":
    main()
