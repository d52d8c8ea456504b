"""One side of a side-by-side run: ``python benchmarks/side.py <tree> <bench module>``.

Imports Whale (``whale`` and every service package) from ``<tree>`` — a baseline checked out in a
temporary git worktree, or the current tree — ahead of the installed editable copy, then runs
*this* tree's benchmark module (the same workload for both sides) and prints its rows as one JSON
line after ``MARKER``. ``PYTHONPATH`` is set too, so processes a benchmark starts
(``python -m whale run ...``) run the same tree. Started by ``python -m benchmarks --baseline``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys
from pathlib import Path

MARKER = "WHALE-BENCH-ROWS "
HERE = Path(__file__).resolve().parent


def tree_paths(tree: Path) -> list[str]:
    """Where a tree's packages live: its root (``whale``) and each service folder (``whale_*``)."""
    services = sorted(p for p in (tree / "services").iterdir() if p.is_dir())
    return [str(tree), *(str(p) for p in services)]


def load_benchmarks() -> None:
    """This tree's ``benchmarks`` package, whatever the other tree on sys.path holds."""
    spec = importlib.util.spec_from_file_location(
        "benchmarks", HERE / "__init__.py", submodule_search_locations=[str(HERE)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks"] = module
    spec.loader.exec_module(module)


def main() -> int:
    tree, name = Path(sys.argv[1]).resolve(), sys.argv[2]
    paths = tree_paths(tree)
    if sys.path and Path(sys.path[0]).resolve() == HERE:
        del sys.path[0]  # the script's folder: bench modules must come from the package below
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    load_benchmarks()
    import whale

    origin = Path(whale.__file__).resolve()
    if tree not in origin.parents:
        raise SystemExit(f"whale was imported from {origin}, not from {tree}")
    module = importlib.import_module(f"benchmarks.{name}")
    rows = module.run()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"rows": rows, "cpu_s": usage.ru_utime + usage.ru_stime, "whale": str(origin)}
    print(MARKER + json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
