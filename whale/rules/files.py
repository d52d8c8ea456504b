"""Rule files: YAML documents of rules, loaded file by file into a :class:`LoadReport`.

A bad file or rule is reported with where it is and why; the other files still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from whale.rules.model import Lookup, Rule, RuleError, validate_rule


@dataclass
class LoadReport:
    """Rules loaded from files, and the files (or documents) that were refused, with why."""

    rules: dict[str, Rule] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # rule id -> the file (``#n``: its n-th document)
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


def rule_documents(text: str) -> list[Any]:
    """A YAML file holds one rule, a list of rules, or several ``---`` documents."""
    docs: list[Any] = []
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        if isinstance(doc, Mapping) and set(doc) == {"rules"} and isinstance(doc["rules"], list):
            docs.extend(doc["rules"])
        elif isinstance(doc, list):
            docs.extend(doc)
        else:
            docs.append(doc)
    return docs


def load_rules_dir(
    directory: Path, catalog: Lookup | None = None, schemas: Lookup | None = None
) -> LoadReport:
    """Load every ``*.yaml``/``*.yml`` under ``directory``; a bad file or rule is reported, others load."""
    report = LoadReport()
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        load_rules_file(path, report, catalog, schemas)
    return report


def load_rules_file(
    path: Path, report: LoadReport, catalog: Lookup | None = None, schemas: Lookup | None = None
) -> None:
    try:
        docs = rule_documents(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        report.problems.append((str(path), f"cannot read: {exc}"))
        return
    for index, doc in enumerate(docs):
        where = f"{path}" if len(docs) == 1 else f"{path}#{index}"
        try:
            rule = validate_rule(doc, catalog, schemas)
        except RuleError as exc:
            report.problems.append((where, str(exc)))
            continue
        if rule.id in report.rules:
            report.problems.append(
                (where, f"duplicate rule id {rule.id!r} (already loaded from another file)")
            )
            continue
        report.rules[rule.id] = rule
        report.origins[rule.id] = where
        report.warnings.extend((where, w) for w in rule.warnings)
