"""Side-by-side benchmark runs: rows of both trees merged by key, each side's best kept."""

from __future__ import annotations

from benchmarks.baseline import merge

KEY = ("case", "rules")
COMPARE = {"events/s": "max", "CPU µs/event": "min"}


def row(rules: int, rate: float, cpu: float, matches: float = 0.3) -> dict[str, object]:
    return {"case": "exact", "rules": rules, "matches/event": matches, "events/s": rate, "CPU µs/event": cpu}


def test_merge_keeps_each_sides_best_and_the_gain() -> None:
    """Rates keep the highest round, CPU the lowest; gain > 1 means the current tree is better."""
    base = [[row(10, 100.0, 20.0)], [row(10, 120.0, 25.0)]]
    new = [[row(10, 300.0, 5.0)], [row(10, 240.0, 4.0)]]
    [merged] = merge(KEY, COMPARE, base, new)
    assert merged == {
        "case": "exact",
        "rules": 10,
        "matches/event": 0.3,
        "events/s base": 120.0,
        "events/s new": 300.0,
        "events/s gain": 2.5,
        "CPU µs/event base": 20.0,
        "CPU µs/event new": 4.0,
        "CPU µs/event gain": 5.0,
    }


def test_merge_shows_descriptive_columns_that_differ_and_rows_missing_in_the_baseline() -> None:
    """A different descriptive value is shown beside the current one; a new row has no baseline."""
    merged = merge(
        KEY, COMPARE, [[row(10, 100.0, 20.0, matches=0.5)]], [[row(10, 100.0, 20.0), row(99, 1.0, 1.0)]]
    )
    assert merged[0]["matches/event"] == "0.3 (base 0.5)"
    assert merged[1]["events/s base"] is None and merged[1]["events/s gain"] is None
