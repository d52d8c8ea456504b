"""The task graph of a workflow, checked on load: start tasks, reachability, the tasks that may run
before a task, and cycles with no exit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from whale_executor.errors import CatalogError

if TYPE_CHECKING:
    from whale_executor.workflow.model import Task


def start_tasks(raw: Any, tasks: dict[str, Task], inbound: dict[str, set[str]], source: str) -> list[str]:
    if raw is None:
        start = [n for n in tasks if not inbound[n]]
        if not start:
            raise CatalogError(
                "no start task: every task has a transition leading to it (set start)", source=source
            )
        return start
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        raise CatalogError("must name a task or list tasks", source=source, field="start")
    for n in names:
        if n not in tasks:
            raise CatalogError(f"names a missing task {n!r}", source=source, field="start")
    return list(names)


def reachable(start: list[str], tasks: dict[str, Task]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(t for tr in tasks[name].next for t in tr.do)
    return seen


def ancestors(name: str, inbound: dict[str, set[str]]) -> set[str]:
    """Tasks with a path to ``name`` (those that may have run before it)."""
    seen: set[str] = set()
    todo = list(inbound[name])
    while todo:
        cur = todo.pop()
        if cur not in seen:
            seen.add(cur)
            todo.extend(inbound[cur])
    return seen


def sccs(tasks: dict[str, Task]) -> list[set[str]]:
    """Strongly connected components (Tarjan, iterative enough for workflow sizes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in {t for tr in tasks[v].next for t in tr.do}:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in tasks:
        if v not in index:
            visit(v)
    return out


def check_cycles(tasks: dict[str, Task], source: str) -> None:
    """A cycle has no exit when, for every task in it and each outcome, an unconditional
    transition leads back into the cycle: the run could never end."""
    for comp in sccs(tasks):
        first = next(iter(comp))
        if len(comp) == 1 and first not in {t for tr in tasks[first].next for t in tr.do}:
            continue

        def loops(task: Task, outcome: str, comp: set[str] = comp) -> bool:
            return any(tr.matches(outcome) and tr.when is None and set(tr.do) & comp for tr in task.next)

        if all(loops(tasks[n], "success") and loops(tasks[n], "failure") for n in comp):
            names = ", ".join(repr(n) for n in sorted(comp))
            raise CatalogError(
                f"tasks {names} form a cycle with no exit (add a condition or a path out)", source=source
            )
