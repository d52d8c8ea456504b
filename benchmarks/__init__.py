"""Whale's benchmarks: `make bench` (``python -m benchmarks``) runs every ``bench_*`` module.

Each module exposes ``run() -> list[dict[str, object]]`` (one dict per table row) and a ``TITLE``;
the runner prints one table per module. Numbers go to BENCHMARKS.md with the machine described.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any


def format_table(title: str, rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table with one column per key of any row (in the order they first appear)."""
    if not rows:
        return f"## {title}\n(no rows)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([f"## {title}", line, rule, *body]) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a service a benchmark started; kill it if it has not exited after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
