"""The rules in force as the console shows them: where each comes from, and explain against an event.

Rules saved through the API live on ``whale.rules`` (``GET /rules``); the rule engine also loads the
rules directory (``WHALE_RULES_DIR``) and lets a saved rule of the same id override a file's. The
console reads that directory when it can see it (``whale up`` runs everything on one machine), so the
list shows every rule with its origin, as ``whale rules list`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.rules.files import LoadReport, load_rules_file
from whale.rules.model import Rule, RuleError, validate_rule
from whale.rules.paths import event_context


def rule_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The rule itself: ``document`` without what ``GET /rules`` adds (``origin``, ``file``, ``overrides``)."""
    return {k: v for k, v in document.items() if k in Rule.model_fields}


@dataclass
class Entry:
    id: str
    document: dict[str, Any]
    origin: str  # "api", "directory" or "api (overrides directory)"
    file: str | None = None


@dataclass
class Book:
    entries: list[Entry] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def get(self, rule_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == rule_id), None)


def directory_rules(directory: Path | None) -> tuple[dict[str, tuple[Rule, str]], list[tuple[str, str]]]:
    """{rule id: (rule, file)} of the rules directory, and the files or rules it refused."""
    if directory is None or not directory.is_dir():
        return {}, []
    out: dict[str, tuple[Rule, str]] = {}
    problems: list[tuple[str, str]] = []
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        report = LoadReport()
        load_rules_file(path, report)
        problems.extend(report.problems)
        for rule_id, rule in report.rules.items():
            out.setdefault(rule_id, (rule, str(path.relative_to(directory))))
    return out, problems


def book(api_rules: list[dict[str, Any]], directory: Path | None) -> Book:
    files, problems = directory_rules(directory)
    found = Book(problems=problems)
    saved = {str(doc.get("id")): doc for doc in api_rules if isinstance(doc, dict)}
    for rule_id in sorted(set(saved) | set(files)):
        if rule_id in saved:
            origin = "api (overrides directory)" if rule_id in files else "api"
            found.entries.append(
                Entry(rule_id, saved[rule_id], origin, files[rule_id][1] if rule_id in files else None)
            )
        else:
            rule, file = files[rule_id]
            found.entries.append(Entry(rule_id, rule.document(), "directory", file))
    return found


@dataclass
class Explained:
    rule: str
    matched: bool
    enabled: bool
    criteria: list[dict[str, Any]]
    error: str = ""


def explain(entries: list[Entry], stored: Any) -> tuple[CloudEvent | None, list[Explained], str]:
    """Each rule against the stored event: matched or not, every criterion with the value it saw."""
    try:
        event = CloudEvent.from_structured(stored) if isinstance(stored, dict) else None
    except EventError as exc:
        return None, [], f"the stored event cannot be read as a CloudEvent: {exc}"
    if event is None:
        return None, [], "the stored event is not a structured CloudEvent"
    ctx = event_context(event)
    out: list[Explained] = []
    for entry in entries:
        try:
            rule = validate_rule(rule_fields(entry.document))
        except RuleError as exc:
            out.append(Explained(entry.id, False, False, [], str(exc)))
            continue
        criteria = [c.as_dict() | {"text": c.describe()} for c in rule.condition.explain(ctx)]
        out.append(Explained(rule.id, bool(rule.condition.evaluate(ctx)), rule.enabled, criteria))
    out.sort(key=lambda e: (not e.matched, -sum(1 for c in e.criteria if c.get("passed")), e.rule))
    return event, out, ""
