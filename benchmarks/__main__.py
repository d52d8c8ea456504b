"""Run every benchmark module (or those named on the command line) and print their tables."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys
import time
import traceback

import benchmarks


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all bench_*)")
    args = parser.parse_args()
    names = args.names or sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    print(f"# Whale benchmarks: {platform.node()} {platform.machine()}, Python {platform.python_version()}\n")
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        try:
            rows = module.run()
        except Exception:
            failed += 1
            print(f"## {getattr(module, 'TITLE', name)}\nFAILED:\n{traceback.format_exc()}")
            continue
        print(benchmarks.format_table(getattr(module, "TITLE", name), rows))
        print(f"({name} took {time.perf_counter() - started:.1f}s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
