"""Run every benchmark module (or those named on the command line) and print their tables.

``--baseline REF`` runs the modules that declare ``KEY`` and ``COMPARE`` side by side with the
tree at git ref REF (see :mod:`benchmarks.baseline`) and skips the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from types import ModuleType

import benchmarks
from benchmarks import baseline


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all bench_*)")
    parser.add_argument("--baseline", metavar="REF", help="also run git ref REF; print both columns")
    parser.add_argument("--rounds", type=int, default=baseline.ROUNDS, help="runs per side (with --baseline)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)  # so a killed run still removes its worktree
    names = args.names or sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    print(f"# Whale benchmarks: {platform.node()} {platform.machine()}, Python {platform.python_version()}")
    print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n")
    if args.baseline:
        with baseline.worktree(args.baseline) as tree:
            print(
                f"# base = {args.baseline} ({tree.commit[:7]}), new = this tree; {args.rounds} rounds each\n"
            )
            return _run(
                names, lambda module, name: baseline.compare(module, name, tree.path, args.rounds), True
            )
    return _run(names, lambda module, _: module.run(), False)


def _run(
    names: list[str], run: Callable[[ModuleType, str], list[dict[str, object]]], side_by_side: bool
) -> int:
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        if side_by_side and not hasattr(module, "COMPARE"):
            print(f"## {getattr(module, 'TITLE', name)}\n(skipped: no KEY/COMPARE for side-by-side runs)\n")
            continue
        try:
            rows = run(module, name)
        except Exception:
            failed += 1
            print(f"## {getattr(module, 'TITLE', name)}\nFAILED:\n{traceback.format_exc()}")
            continue
        print(benchmarks.format_table(getattr(module, "TITLE", name), rows))
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"({name} took {time.perf_counter() - started:.1f}s; load average {load})\n", flush=True)
    return 1 if failed else 0


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
