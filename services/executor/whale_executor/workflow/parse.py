"""Loading a workflow definition (:mod:`whale_executor.workflow.model` shows the format): every
key, task, transition, fan-out, approval policy and template checked, so a
:class:`~whale_executor.errors.CatalogError` names the file and the task before anything runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from whale.rules import templating
from whale_executor.actions.base import Action, SchemaParams
from whale_executor.actions.yamlspec import check_templates
from whale_executor.errors import CatalogError
from whale_executor.workflow import graph
from whale_executor.workflow.model import FanOut, Retry, Task, Transition, Workflow

WORKFLOW_KEYS = frozenset({"kind", "name", "description", "params", "timeout", "tasks", "start", "output"})
FANOUT_KEYS = frozenset(
    {"with_items", "with_hosts", "concurrency", "stop_after_failures", "max_failure_percent"}
)
APPROVAL_KEYS = frozenset({"approvers", "response_schema"})
TASK_KEYS = (
    frozenset({"action", "workflow", "type", "input", "timeout", "retry", "next", "join", "message"})
    | FANOUT_KEYS
    | APPROVAL_KEYS
)
TRANSITION_KEYS = frozenset({"on", "when", "do"})
OUTCOMES = ("success", "failure", "always")
CONTEXT_ROOTS = frozenset({"input", "tasks", "run_id", "result", "item"})


def parse_workflow(doc: Mapping[str, Any], *, source: str, actions: Mapping[str, Action]) -> Workflow:
    """Build and validate a workflow; every :class:`CatalogError` names the file and the task."""
    unknown = sorted(set(doc) - WORKFLOW_KEYS)
    if unknown:
        raise CatalogError(f"unknown key {unknown[0]!r}", source=source, field=unknown[0])
    name = doc.get("name")
    if not isinstance(name, str):
        raise CatalogError("required", source=source, field="name")
    raw_tasks = doc.get("tasks")
    if not isinstance(raw_tasks, Mapping) or not raw_tasks:
        raise CatalogError("required: a mapping of task name to task", source=source, field="tasks")
    tasks = {str(n): _task(str(n), t, source=source, actions=actions) for n, t in raw_tasks.items()}
    inbound: dict[str, set[str]] = {n: set() for n in tasks}
    for task in tasks.values():
        for i, tr in enumerate(task.next):
            for target in tr.do:
                if target not in tasks:
                    raise CatalogError(
                        f"task {task.name!r}: next[{i}].do names a missing task {target!r}", source=source
                    )
                inbound[target].add(task.name)
    start = graph.start_tasks(doc.get("start"), tasks, inbound, source)
    reachable = graph.reachable(start, tasks)
    lost = sorted(set(tasks) - reachable)
    if lost:
        raise CatalogError(
            f"task {lost[0]!r} is unreachable (no transition from a start task leads to it)", source=source
        )
    graph.check_cycles(tasks, source)
    for task in tasks.values():
        if task.join is not None:
            wanted = len(inbound[task.name]) if task.join == 0 else task.join
            if not inbound[task.name] or wanted > len(inbound[task.name]):
                raise CatalogError(
                    f"task {task.name!r}: join {wanted} but only {len(inbound[task.name])} task(s) lead to it",
                    source=source,
                )
            task.join = wanted
    ancestors = {n: graph.ancestors(n, inbound) for n in tasks}
    for task in tasks.values():
        where = f"task {task.name!r}: input"
        _check_refs(task.input, ancestors[task.name], where, tasks, source, item=task.fanout is not None)
        if task.fanout is not None:
            kind = "with_items" if task.fanout.hosts is None else "with_hosts"
            where = f"task {task.name!r}: {kind}"
            refs = task.fanout.items if task.fanout.hosts is None else task.fanout.hosts
            _check_refs(refs, ancestors[task.name], where, tasks, source)
        if task.message is not None:
            _check_refs(task.message, ancestors[task.name], f"task {task.name!r}: message", tasks, source)
        for i, tr in enumerate(task.next):
            if tr.when is not None:
                allowed = ancestors[task.name] | {task.name}
                _check_refs(tr.when, allowed, f"task {task.name!r}: next[{i}].when", tasks, source)
    output = doc.get("output")
    check_templates(output, source=source, field="output")
    _check_refs(output, set(tasks), "output", tasks, source)
    timeout = doc.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise CatalogError("must be a positive number of seconds", source=source, field="timeout")
    return Workflow(
        name=name,
        description=str(doc.get("description", "")),
        source=source,
        params=SchemaParams(doc.get("params"), source=source),
        tasks=tasks,
        start=start,
        inbound=inbound,
        output=output,
        timeout=float(timeout) if timeout is not None else None,
        idempotent_actions={n: a.idempotent for n, a in actions.items()},
    )


def _task(name: str, raw: Any, *, source: str, actions: Mapping[str, Action]) -> Task:
    where = f"task {name!r}"
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: must be a mapping", source=source)
    unknown = sorted(set(raw) - TASK_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown key {unknown[0]!r}", source=source)
    kind = raw.get("type", "workflow" if "workflow" in raw else "action")
    if kind not in ("action", "approval", "workflow"):
        raise CatalogError(f"{where}: type must be action, approval or workflow", source=source)
    action = raw.get("action")
    child = _child_workflow(raw, kind, where, source)
    if kind == "workflow":
        if action is not None:
            raise CatalogError(f"{where}: a workflow task runs no action", source=source)
    elif kind == "action":
        if not isinstance(action, str):
            raise CatalogError(f"{where}: action is required", source=source)
        if action not in actions:
            raise CatalogError(f"{where}: unknown action {action!r}", source=source)
    elif action is not None:
        raise CatalogError(f"{where}: an approval task runs no action", source=source)
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise CatalogError(f"{where}: message must be a string template", source=source)
    check_templates(raw.get("input"), source=source, field=f"tasks.{name}.input")
    check_templates(message, source=source, field=f"tasks.{name}.message")
    timeout = raw.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise CatalogError(f"{where}: timeout must be a positive number of seconds", source=source)
    join = raw.get("join")
    if (
        join is not None
        and join != "all"
        and (isinstance(join, bool) or not isinstance(join, int) or join < 1)
    ):
        raise CatalogError(f"{where}: join must be 'all' or a positive count", source=source)
    return Task(
        fanout=_fanout(raw, kind, name, source),
        name=name,
        type=kind,
        action=action,
        input=raw.get("input") or {},
        timeout=float(timeout) if timeout is not None else None,
        retry=_retry(raw.get("retry"), where, source),
        next=_transitions(raw.get("next"), where, source),
        join=None if join is None else (0 if join == "all" else join),
        message=message,
        workflow=child,
        **_approval_policy(raw, kind, where, source),
    )


def _child_workflow(raw: Mapping[str, Any], kind: str, where: str, source: str) -> str | None:
    """A ``workflow:`` task's child workflow name (whether it exists is checked once every workflow
    of the pool is loaded: :func:`~whale_executor.workflow.graph.check_nesting`)."""
    if kind != "workflow":
        if "workflow" in raw:
            raise CatalogError(f"{where}: workflow only goes with type: workflow", source=source)
        return None
    child = raw.get("workflow")
    if not isinstance(child, str) or not child:
        raise CatalogError(f"{where}: workflow must name a catalogued workflow", source=source)
    for key in ("retry", "timeout", "message"):
        if key in raw:
            raise CatalogError(
                f"{where}: a workflow task takes no {key} (the child workflow's own timeout and its"
                " tasks' retries apply)",
                source=source,
            )
    return child


def _approval_policy(raw: Mapping[str, Any], kind: str, where: str, source: str) -> dict[str, Any]:
    """An approval's ``approvers`` (``role`` and/or ``people``) and ``response_schema``, checked."""
    given = sorted(APPROVAL_KEYS & set(raw))
    if not given:
        return {}
    if kind != "approval":
        raise CatalogError(f"{where}: {given[0]} only goes with type: approval", source=source)
    out: dict[str, Any] = {}
    approvers = raw.get("approvers")
    if approvers is not None:
        if not isinstance(approvers, Mapping) or not approvers or set(approvers) - {"role", "people"}:
            raise CatalogError(f"{where}: approvers takes role and/or people", source=source)
        role = approvers.get("role")
        if role is not None and role not in ("viewer", "operator", "author", "admin"):
            raise CatalogError(
                f"{where}: approvers.role must be viewer, operator, author or admin", source=source
            )
        people = approvers.get("people", [])
        if not isinstance(people, list) or not all(isinstance(p, str) and p for p in people):
            raise CatalogError(f"{where}: approvers.people must be a list of names", source=source)
        out["approvers"] = {"role": role, "people": list(people)}
    schema = raw.get("response_schema")
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise CatalogError(
                f"{where}: response_schema is not a JSON Schema: {exc.message}", source=source
            ) from None
        out["response_schema"] = dict(schema)
    return out


def _fanout(raw: Mapping[str, Any], kind: str, name: str, source: str) -> FanOut | None:
    where = f"task {name!r}"
    if "with_items" not in raw and "with_hosts" not in raw:
        extra = sorted(FANOUT_KEYS & set(raw))
        if extra:
            raise CatalogError(f"{where}: {extra[0]} only goes with with_items or with_hosts", source=source)
        return None
    if "with_items" in raw and "with_hosts" in raw:
        raise CatalogError(f"{where}: give either with_items or with_hosts", source=source)
    if kind != "action":
        raise CatalogError(
            f"{where}: with_items runs an action; {'an' if kind == 'approval' else 'a'} {kind} task"
            " cannot fan out",
            source=source,
        )
    items = raw.get("with_items")
    hosts = raw.get("with_hosts")
    if hosts is not None:
        if not isinstance(hosts, Mapping) or not hosts or set(hosts) - {"group", "labels"}:
            raise CatalogError(
                f"{where}: with_hosts must be a selector: {{group: ..., labels: {{...}}}}", source=source
            )
        if "labels" in hosts and not isinstance(hosts["labels"], Mapping):
            raise CatalogError(
                f"{where}: with_hosts.labels must be a mapping of label to value", source=source
            )
        check_templates(dict(hosts), source=source, field=f"tasks.{name}.with_hosts")
    elif not isinstance(items, str | list):
        raise CatalogError(
            f"{where}: with_items must be a list or a template rendering to one", source=source
        )
    else:
        check_templates(items, source=source, field=f"tasks.{name}.with_items")
    counts: dict[str, int | None] = {}
    for key in ("concurrency", "stop_after_failures"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise CatalogError(f"{where}: {key} must be a positive integer", source=source)
        counts[key] = value
    percent = raw.get("max_failure_percent")
    if percent is not None and (
        isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent < 100
    ):
        raise CatalogError(
            f"{where}: max_failure_percent must be a number from 0 to below 100", source=source
        )
    return FanOut(
        items=items,
        concurrency=counts["concurrency"],
        stop_after_failures=counts["stop_after_failures"],
        max_failure_percent=None if percent is None else float(percent),
        hosts=None if hosts is None else dict(hosts),
    )


def _retry(raw: Any, where: str, source: str) -> Retry:
    if raw is None:
        return Retry()
    if not isinstance(raw, Mapping) or set(raw) - {"count", "delay", "backoff", "max_delay"}:
        raise CatalogError(f"{where}: retry takes count, delay, backoff, max_delay", source=source)
    values = {k: raw[k] for k in raw}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise CatalogError(f"{where}: retry.{key} must be a non-negative number", source=source)
    if not isinstance(values.get("count", 0), int):
        raise CatalogError(f"{where}: retry.count must be an integer", source=source)
    return Retry(**values)


def _transitions(raw: Any, where: str, source: str) -> list[Transition]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CatalogError(f"{where}: next must be a list of transitions", source=source)
    out: list[Transition] = []
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and True in item:  # YAML 1.1 reads a bare `on:` key as true
            item = {("on" if k is True else k): v for k, v in item.items()}
        if not isinstance(item, Mapping) or set(item) - TRANSITION_KEYS or "do" not in item:
            raise CatalogError(f"{where}: next[{i}] takes do (required), on, when", source=source)
        on = item.get("on", "success")
        if on not in OUTCOMES:
            raise CatalogError(f"{where}: next[{i}].on must be success, failure or always", source=source)
        when = item.get("when")
        if when is not None:
            if not isinstance(when, str):
                raise CatalogError(f"{where}: next[{i}].when must be a template string", source=source)
            check_templates(when, source=source, field=f"{where}.next[{i}].when")
        do = item["do"]
        targets = [do] if isinstance(do, str) else do
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise CatalogError(f"{where}: next[{i}].do must name a task or list tasks", source=source)
        out.append(Transition(on=on, when=when, do=tuple(targets)))
    return out


def _check_refs(
    value: Any, allowed: set[str], where: str, tasks: dict[str, Task], source: str, *, item: bool = False
) -> None:
    roots = CONTEXT_ROOTS if item else CONTEXT_ROOTS - {"item"}
    for text in _strings(value):
        names = templating.referenced_names(text)
        for dotted in names:
            parts = dotted.split(".")
            if parts[0] not in roots:
                seen = "input, tasks, run_id, result" + (", item" if item else "")
                hint = " (item: only in the input of a task with with_items)" if parts[0] == "item" else ""
                raise CatalogError(
                    f"{where}: unknown name {parts[0]!r} (templates see {seen}){hint}", source=source
                )
            if parts[0] == "tasks" and len(parts) > 1:
                ref = parts[1]
                if ref not in tasks:
                    raise CatalogError(f"{where}: refers to a missing task {ref!r}", source=source)
                if ref not in allowed:
                    raise CatalogError(
                        f"{where}: refers to task {ref!r}, which cannot have run before it", source=source
                    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
