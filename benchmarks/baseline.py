"""Side by side with an older tree: ``make bench BASELINE=<git ref>``.

The baseline is checked out in a temporary git worktree (seconds; it reuses this venv: the
baseline's source goes first on ``sys.path``, see :mod:`benchmarks.side`). Each benchmark then runs
in fresh processes, alternating baseline and current ROUNDS times (the order flips every round), so
load from other processes on a shared machine hits both alike. Every run uses this tree's benchmark
code, so both sides get the same workload.

A benchmark joins by declaring, beside ``run()``:

- ``KEY``: the columns that name a row (``("case", "rules")``), the same on both sides;
- ``COMPARE``: the measured columns and which way is better, ``{"events/s": "max", "CPU µs/event":
  "min"}``. Over the rounds each side keeps its best value; the table shows both and ``gain`` (how
  many times better the current tree is: current/baseline for "max", baseline/current for "min").

Other columns are shown from the current tree (with the baseline's value beside it when they
differ, e.g. a different number of matches). Report CPU per event next to every rate.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.side import MARKER

ROOT = Path(__file__).resolve().parent.parent
SIDE = Path(__file__).resolve().parent / "side.py"
ROUNDS = 3


@dataclass(frozen=True)
class Tree:
    path: Path
    commit: str


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Tree]:
    """``ref`` checked out (detached) in a temporary git worktree, removed afterwards."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    with tempfile.TemporaryDirectory(prefix="whale-baseline-") as tmp:
        path = Path(tmp) / "tree"
        _git("worktree", "add", "--detach", "--quiet", str(path), commit)
        try:
            yield Tree(path, commit)
        finally:
            _git("worktree", "remove", "--force", str(path))


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def run_side(tree: Path, name: str) -> list[dict[str, Any]]:
    """One run of benchmark ``name`` with Whale imported from ``tree``, in a fresh process."""
    done = subprocess.run(
        [sys.executable, str(SIDE), str(tree), name], capture_output=True, text=True, cwd=tree, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            rows: list[dict[str, Any]] = json.loads(line[len(MARKER) :])["rows"]
            return rows
    raise RuntimeError(f"{name} on {tree} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def compare(module: ModuleType, name: str, base_tree: Path, rounds: int = ROUNDS) -> list[dict[str, object]]:
    """Rows with both sides' best values of every ``COMPARE`` column and the gain."""
    sides: dict[str, list[list[dict[str, Any]]]] = {"base": [], "new": []}
    for n in range(rounds):
        order = [("base", base_tree), ("new", ROOT)]
        for side, tree in order if n % 2 == 0 else order[::-1]:
            sides[side].append(run_side(tree, name))
            print(f"  ({name}: round {n + 1}/{rounds}, {side} done)", file=sys.stderr, flush=True)
    return merge(module.KEY, module.COMPARE, sides["base"], sides["new"])


def merge(
    key: Sequence[str],
    measures: dict[str, str],
    base_runs: list[list[dict[str, Any]]],
    new_runs: list[list[dict[str, Any]]],
) -> list[dict[str, object]]:
    """One row per key: the descriptive columns, then per measure ``base``, ``new`` and ``gain``."""
    base, new = _best(key, measures, base_runs), _best(key, measures, new_runs)
    rows: list[dict[str, object]] = []
    for ident, current in new.items():
        old = base.get(ident, {})
        row: dict[str, object] = {}
        for column, value in current.items():
            if column in measures:
                continue
            seen = old.get(column, value)
            row[column] = value if seen == value or column in key else f"{value} (base {seen})"
        for column, better in measures.items():
            b, c = old.get(column), current.get(column)
            row[f"{column} base"] = b
            row[f"{column} new"] = c
            gain = None
            if isinstance(b, int | float) and isinstance(c, int | float) and b > 0 and c > 0:
                gain = round(c / b if better == "max" else b / c, 2)
            row[f"{column} gain"] = gain
        rows.append(row)
    return rows


def _best(
    key: Sequence[str], measures: dict[str, str], runs: list[list[dict[str, Any]]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rows in runs:
        for row in rows:
            ident = tuple(row.get(k) for k in key)
            kept = best.setdefault(ident, dict(row))
            for column, better in measures.items():
                value, old = row.get(column), kept.get(column)
                if isinstance(value, int | float) and isinstance(old, int | float):
                    kept[column] = max(value, old) if better == "max" else min(value, old)
    return best
