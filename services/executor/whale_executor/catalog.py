"""The catalogue of one pool: actions and workflows by name, loaded and validated at start-up.

Sources: Python actions of the ``whale.actions`` entry-point group and of configured modules, and
YAML files (``*.yaml``/``*.yml``, recursively) in the configured directories, each one definition
with a ``kind``: ``http``, ``shell``, ``ssh``, ``notify``, ``ansible``, ``python`` (``callable:
module:attribute``) or ``workflow``; a file whose top level is a list (an Ansible playbook) is not a
definition and is skipped. Every problem names the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from whale_executor.actions.ansible import AnsibleAction
from whale_executor.actions.base import Action, describe
from whale_executor.actions.http import HttpAction
from whale_executor.actions.notify import NotifyAction
from whale_executor.actions.python import actions_in, load_path
from whale_executor.actions.shell import ShellAction
from whale_executor.actions.ssh import SshAction
from whale_executor.errors import CatalogError
from whale_executor.workflow.graph import check_nesting
from whale_executor.workflow.model import Workflow
from whale_executor.workflow.parse import parse_workflow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ENTRY_POINT_GROUP = "whale.actions"
YAML_KINDS: dict[str, Callable[..., Action]] = {
    "http": HttpAction,
    "shell": ShellAction,
    "ssh": SshAction,
    "notify": NotifyAction,
    "ansible": AnsibleAction,
}


@dataclass
class Catalog:
    """Actions and workflows of one pool."""

    pool: str
    actions: dict[str, Action] = field(default_factory=dict)
    workflows: dict[str, Workflow] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def add_action(self, action: Action, source: str) -> None:
        if not isinstance(action, Action):
            raise CatalogError("is not an action (missing name, kind, validate or run)", source=source)
        self._claim(action.name, source)
        self.actions[action.name] = action

    def add_workflow(self, workflow: Workflow, source: str) -> None:
        self._claim(workflow.name, source)
        self.workflows[workflow.name] = workflow

    def _claim(self, name: str, source: str) -> None:
        if not isinstance(name, str) or not NAME.match(name):
            raise CatalogError(
                f"invalid name {name!r}: letters, digits, '.', '_' and '-' only", source=source, field="name"
            )
        if name in self.sources:
            raise CatalogError(
                f"{name!r} is already defined in {self.sources[name]}", source=source, field="name"
            )
        self.sources[name] = source

    def describe(self) -> dict[str, Any]:
        """The ``whale.catalog.published`` data (contract)."""
        return {
            "pool": self.pool,
            "actions": [describe(self.actions[n]) for n in sorted(self.actions)],
            "workflows": [self.workflows[n].describe() for n in sorted(self.workflows)],
        }


def read_yaml(path: Path) -> dict[str, Any] | None:
    """The definition in ``path``; None for a YAML list (an Ansible playbook or task file shipped
    beside the actions that run it, not a definition)."""
    source = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", source=source) from None
    except OSError as exc:
        raise CatalogError(f"cannot read: {exc.strerror}", source=source) from None
    if isinstance(doc, list):
        return None
    if not isinstance(doc, dict):
        raise CatalogError("must be a mapping with a 'kind'", source=source)
    if not isinstance(doc.get("kind"), str):
        raise CatalogError(
            "required: http, shell, ssh, notify, python or workflow", source=source, field="kind"
        )
    return doc


def yaml_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise CatalogError("is not a directory", source=str(directory))
        files.extend(sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
    return files


def action_from_yaml(doc: Mapping[str, Any], source: str) -> Action:
    kind = doc["kind"]
    if kind == "python":
        target = doc.get("callable")
        if not isinstance(target, str) or ":" not in target:
            raise CatalogError(
                "required: 'module:attribute' of a PythonAction", source=source, field="callable"
            )
        found = list(actions_in(load_path(target, source=source)))
        if len(found) != 1:
            raise CatalogError(f"{target} is not a PythonAction", source=source, field="callable")
        return found[0]
    factory = YAML_KINDS.get(kind)
    if factory is None:
        raise CatalogError(
            f"unknown kind {kind!r} (http, shell, ssh, notify, python or workflow)",
            source=source,
            field="kind",
        )
    if not isinstance(doc.get("name"), str):
        raise CatalogError("required", source=source, field="name")
    return factory(doc, source=source)


def load_catalog(
    *,
    pool: str,
    dirs: Iterable[Path] = (),
    modules: Iterable[str] = (),
    use_entry_points: bool = True,
    max_workflow_depth: int = 5,
) -> Catalog:
    """Load and validate everything; raises :class:`CatalogError` at the first problem."""
    catalog = Catalog(pool)
    if use_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            source = f"entry point {ep.name} ({ep.value})"
            try:
                loaded = ep.load()
            except Exception as exc:
                raise CatalogError(f"cannot load: {type(exc).__name__}: {exc}", source=source) from None
            for act in actions_in(loaded):
                catalog.add_action(act, source)
    for module in modules:
        for act in actions_in(load_path(module)):
            catalog.add_action(act, f"module {module}")
    workflow_docs: list[tuple[dict[str, Any], str]] = []
    for path in yaml_files(dirs):
        doc = read_yaml(path)
        if doc is None:
            continue
        if doc["kind"] == "workflow":
            workflow_docs.append((doc, str(path)))
        else:
            catalog.add_action(action_from_yaml(doc, str(path)), str(path))
    for doc, source in workflow_docs:
        catalog.add_workflow(parse_workflow(doc, source=source, actions=catalog.actions), source)
    check_nesting(catalog.workflows, max_workflow_depth)
    return catalog
