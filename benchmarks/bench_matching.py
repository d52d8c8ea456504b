"""Rule matching throughput in process: the same events against rule sets of growing size.

Two cases. **exact**: rules shaped like real ones, most pinning the event type (plus a threshold and
a regex on data), some pinning a data field, a few an ``any`` of two, plus one rule without an
equality constraint (an anchored regex on ``data.host``); 10 to 10,000 rules. **subject**: rules
with no equality constraint at all, half ``prefix`` and half anchored ``regex`` (wildcard-like,
``^db-7\\.[a-z]+\\.prod$``) on ``subject``; 10 and 1,000 rules. Half the events hit rules present at
every size, half match none, so the work per event is the same at every size.

Each figure is the best of ROUNDS runs of MIN_SECONDS, sizes interleaved; CPU µs/event is this
process's user+system time (``getrusage``) over the same runs. Runs side by side with an older
tree (``make bench BASELINE=<ref>``): the same events and rules, that tree's matching code.
"""

from __future__ import annotations

import importlib
import random
import resource
import time
from collections.abc import Callable
from typing import Any

from whale.cloudevent import CloudEvent
from whale.rules.model import Rule, validate_rule
from whale.rules.paths import event_context

TITLE = "Rule matching (in process, indexed): events per second by number of rules"
KEY = ("case", "rules")
COMPARE = {"events/s": "max", "CPU µs/event": "min"}
EXACT_SIZES = (10, 100, 1_000, 10_000)
SUBJECT_SIZES = (10, 1_000)
EVENTS = 2_000
MIN_SECONDS = 0.3
ROUNDS = 5
CHUNK = 50
SAMPLE = 200  # events over which candidates and matches per event are counted


def rule_index_class() -> Any:
    """``RuleIndex`` wherever the tree under test keeps it (it moved to the shared library)."""
    for name in ("whale.rules.index", "whale_rule_engine.index"):
        try:
            return importlib.import_module(name).RuleIndex
        except ImportError:
            continue
    raise ImportError("no RuleIndex in whale.rules.index or whale_rule_engine.index")


def _rule(rule_id: str, match: dict[str, Any]) -> Rule:
    return validate_rule({"id": rule_id, "match": match, "target": {"kind": "action", "name": "noop"}})


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


CATCH_ALL = _rule("bench-catch-all", {"field": "data.host", "regex": "^db-"})


def make_subject_rule(i: int) -> Rule:
    """Even: a prefix; odd: a wildcard-like anchored regex. Rule i and i+1 concern host/db i // 2."""
    n = i // 2
    if i % 2 == 0:
        return _rule(f"subject-{i:05d}", {"field": "subject", "prefix": f"host-{n}."})
    return _rule(f"subject-{i:05d}", {"field": "subject", "regex": rf"^db-{n}\.[a-z]+\.prod$"})


def _context(rng: random.Random, n: int, type_: str, subject: str) -> dict[str, Any]:
    event = CloudEvent.create(
        type=type_,
        source="bench/matching",
        subject=subject,
        severity=rng.choice(["critical", "warning", "info"]),
        data={"value": rng.randrange(100), "host": f"web-{n % 7}", "service": f"svc-{rng.randrange(10)}"},
    )
    return event_context(event)


def make_events(count: int) -> list[dict[str, Any]]:
    """The same events for every size: types and services of the first 10 rules, plus misses."""
    rng = random.Random(42)
    events = []
    for n in range(count):
        i = rng.randrange(20)  # half hit rules 0..9 (present at every size), half match no rule
        type_ = f"bench.alert.{i}" if i < 10 else f"bench.unknown.{i}"
        events.append(_context(rng, n, type_, f"web-{n % 7}"))
    return events


def make_subject_events(count: int) -> list[dict[str, Any]]:
    """Half hit the first 10 subject rules (present at every size), half no rule."""
    rng = random.Random(43)
    events = []
    for n in range(count):
        i = rng.randrange(20)
        region = rng.choice(["eu", "us", "ap"])
        if i < 10:
            subject = f"host-{i // 2}.{region}.prod" if i % 2 == 0 else f"db-{i // 2}.{region}.prod"
        else:
            subject = f"{rng.choice(['host', 'db', 'app'])}-{5000 + n}.{region}.prod"
        events.append(_context(rng, n, "bench.subject", subject))
    return events


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate_once(match: Callable[[dict[str, Any]], Any], events: list[dict[str, Any]]) -> tuple[float, float]:
    """(events per second, CPU seconds per event) over at least MIN_SECONDS, in chunks of CHUNK
    events (a slow tree stops after MIN_SECONDS, not after the whole list)."""
    done = 0
    started, cpu = time.perf_counter(), _cpu()
    while True:
        for start in range(0, len(events), CHUNK):
            for ctx in events[start : start + CHUNK]:
                match(ctx)
            done += min(CHUNK, len(events) - start)
            elapsed = time.perf_counter() - started
            if elapsed >= MIN_SECONDS:
                return done / elapsed, (_cpu() - cpu) / done


def run() -> list[dict[str, object]]:
    rule_index = rule_index_class()
    exact, subject = make_events(EVENTS), make_subject_events(EVENTS)
    cases: list[tuple[str, int, Any, list[dict[str, Any]]]] = [
        ("exact", size + 1, rule_index([*(make_rule(i) for i in range(size)), CATCH_ALL]), exact)
        for size in EXACT_SIZES
    ]
    cases += [
        ("subject prefix/regex", size, rule_index([make_subject_rule(i) for i in range(size)]), subject)
        for size in SUBJECT_SIZES
    ]
    best = [0.0] * len(cases)
    cpu = [float("inf")] * len(cases)
    for _ in range(ROUNDS):  # sizes interleaved, best of ROUNDS: other load hits every size alike
        for n, (_, _, index, events) in enumerate(cases):
            rate, seconds = rate_once(index.match, events)
            best[n], cpu[n] = max(best[n], rate), min(cpu[n], seconds)
    rows: list[dict[str, object]] = []
    for n, (case, rules, index, events) in enumerate(cases):
        sample = events[:SAMPLE]
        candidates = sum(len(index.candidates(ctx)) for ctx in sample) / len(sample)
        matched = sum(len(index.match(ctx)) for ctx in sample) / len(sample)
        rows.append(
            {
                "case": case,
                "rules": rules,
                "candidates/event": round(candidates, 2),
                "matches/event": round(matched, 2),
                "events/s": best[n],
                "CPU µs/event": round(cpu[n] * 1e6, 2),
            }
        )
    return rows


def main() -> None:
    from benchmarks import format_table

    print(format_table(TITLE, run()))


if __name__ == "__main__":
    main()
