"""The task graph of a workflow, checked on load: start tasks, reachability, the tasks that may run
before a task, and cycles with no exit; across the pool's workflows, the nesting of ``workflow:`` tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from whale_executor.errors import CatalogError

if TYPE_CHECKING:
    from whale_executor.workflow.model import Task, Workflow


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


def check_nesting(workflows: Mapping[str, Workflow], max_depth: int) -> None:
    """Every ``workflow:`` task names a workflow of the pool that waits for no approval, no workflow
    runs itself (directly or through others) and no chain of child runs is deeper than ``max_depth``
    workflows."""
    children = {
        name: [(t.name, t.workflow) for t in wf.tasks.values() if t.workflow is not None]
        for name, wf in workflows.items()
    }
    for name, wf in workflows.items():
        for task, child in children[name]:
            if child not in workflows:
                raise CatalogError(f"task {task!r}: unknown workflow {child!r}", source=wf.source)
            asks = [t.name for t in workflows[child].tasks.values() if t.type == "approval"]
            if asks:
                raise CatalogError(
                    f"task {task!r}: workflow {child!r} has an approval task ({asks[0]!r}); approvals"
                    " are not supported in a child run yet",
                    source=wf.source,
                )
    depth: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> int:
        if name in chain:
            loop = " -> ".join([*chain[chain.index(name) :], name])
            raise CatalogError(
                f"workflow {chain[0]!r} runs itself through its workflow tasks: {loop}",
                source=workflows[chain[0]].source,
            )
        if name not in depth:
            depth[name] = 1 + max((visit(c, [*chain, name]) for _, c in children[name]), default=0)
        return depth[name]

    for name in sorted(workflows):
        if visit(name, []) > max_depth:
            raise CatalogError(
                f"workflow {name!r} nests {depth[name]} workflows deep: {' -> '.join(_deepest(name, children, depth))}"
                f" (at most {max_depth}, the executor's max_workflow_depth)",
                source=workflows[name].source,
            )


def _deepest(name: str, children: Mapping[str, list[tuple[str, str]]], depth: Mapping[str, int]) -> list[str]:
    chain = [name]
    while children[chain[-1]]:
        chain.append(max((c for _, c in children[chain[-1]]), key=lambda c: depth[c]))
    return chain
