"""Workflow definitions (Orquesta's idea kept small) and their validation on load.

.. code-block:: yaml

    kind: workflow
    name: host.restart
    params: {type: object, properties: {host: {type: string}}, required: [host]}
    timeout: 600                       # the whole run
    tasks:
      check:
        action: core.echo
        input: {message: "{{ input.host }}"}
        retry: {count: 2, delay: 1, backoff: 2}
        timeout: 30
        next:
          - {on: success, do: [left, right]}            # parallel branches
          - {on: failure, when: "{{ result.error.retryable }}", do: notify}
      left: {action: core.noop, next: [{do: both}]}
      right: {action: core.noop, next: [{do: both}]}
      both: {join: all, type: approval, message: "Restart {{ input.host }}?", timeout: 3600}
    output: {checked: "{{ tasks.check.output.message }}"}

``on`` is ``success`` (default), ``failure`` or ``always``; ``when`` is an optional condition;
templates see ``input``, ``tasks.<name>.{status,output,error}``, ``run_id`` and, in ``when``, ``result``
(the finishing task's own status/output/error). Start tasks are those no transition leads to, unless
``start`` lists them. Loading and checking a definition: :mod:`whale_executor.workflow.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from whale_executor.actions.base import SchemaParams


@dataclass(frozen=True, slots=True)
class Transition:
    on: str
    when: str | None
    do: tuple[str, ...]

    def matches(self, outcome: str) -> bool:
        return self.on == "always" or self.on == outcome


@dataclass(frozen=True, slots=True)
class Retry:
    count: int = 0
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0

    def wait(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1`` after attempt ``attempt`` failed."""
        return float(min(self.max_delay, self.delay * (self.backoff ** (attempt - 1))))


@dataclass(frozen=True, slots=True)
class FanOut:
    """``with_items``: the task's action runs once per item of a rendered list, or ``with_hosts``:
    once per inventory host of a selector, the item being the host's name (see fanout.py)."""

    items: Any  # a template rendering to a list, or a list (its strings templated); None with hosts
    concurrency: int | None  # None: every item at once (still bounded by the executor's concurrency)
    stop_after_failures: int | None
    max_failure_percent: float | None
    hosts: dict[str, Any] | None = None  # with_hosts: a selector {group, labels} (its strings templated)

    def crossed(self, failed: int, total: int) -> bool:
        """Whether ``failed`` failures out of ``total`` items cross the failure threshold: at least
        ``stop_after_failures``, or more than ``max_failure_percent`` of all items (as Ansible's
        ``max_fail_percentage``). Without either, the first failure crosses it (StackStorm)."""
        if self.stop_after_failures is None and self.max_failure_percent is None:
            return failed >= 1
        if self.stop_after_failures is not None and failed >= self.stop_after_failures:
            return True
        return self.max_failure_percent is not None and failed * 100 > self.max_failure_percent * total


@dataclass
class Task:
    name: str
    type: str  # "action" | "approval" | "workflow"
    action: str | None
    input: Any
    timeout: float | None
    retry: Retry
    next: list[Transition]
    join: int | None
    message: str | None
    fanout: FanOut | None = None
    approvers: dict[str, Any] | None = None  # approval: {"role": ..., "people": [...]} who may answer
    response_schema: dict[str, Any] | None = None  # approval: JSON Schema of the answer's response
    workflow: str | None = None  # type workflow: the catalogued workflow it runs as a child run


@dataclass
class Workflow:
    name: str
    description: str
    source: str
    params: SchemaParams
    tasks: dict[str, Task]
    start: list[str]
    inbound: dict[str, set[str]]
    output: Any
    timeout: float | None
    idempotent_actions: dict[str, bool] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "params_schema": self.params.schema}
