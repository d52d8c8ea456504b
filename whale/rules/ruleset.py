"""The rules in force, changed live: the one :class:`RuleSet` every stage matches with.

The rule engine, the to-do stage and ``whale rules explain`` all see the same rules: those of the
rules directory, overridden by the records of the compacted ``whale.rules`` topic (the topic winning
for the same id). A tombstone removes the topic's record, so a directory rule of that id applies
again (the directory is the deployment's baseline; delete a file to retire it). Matching goes through
one :class:`~whale.rules.index.RuleIndex` (enabled rules only), behind a lock because topic records
arrive on the :class:`~whale.compacted.CompactedView` thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from whale.cloudevent import CloudEvent
from whale.rules.files import LoadReport, load_rules_dir
from whale.rules.index import RuleIndex
from whale.rules.model import Lookup, Rule, RuleError, validate_rule

log = structlog.get_logger(__name__)


def origin_of(rule_id: str, *, in_topic: bool, files: Mapping[str, str]) -> dict[str, str]:
    """``{"origin": "topic"}`` (with ``overrides``: the file of the directory rule it hides) or
    ``{"origin": "directory", "file": <file>}``; empty for an unknown id."""
    if in_topic:
        return {"origin": "topic", **({"overrides": files[rule_id]} if rule_id in files else {})}
    return {"origin": "directory", "file": files[rule_id]} if rule_id in files else {}


class RuleSet:
    """The effective rules (directory + ``whale.rules`` records) and their index.

    ``on_size`` is told the number of enabled rules after each change (a stage's gauge).
    """

    def __init__(self, *, on_size: Callable[[int], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._from_dir: dict[str, Rule] = {}
        self._from_topic: dict[str, Rule] = {}
        self._files: dict[str, str] = {}  # directory rule id -> its file
        self._index = RuleIndex()
        self._on_size = on_size

    def load_directory(
        self, directory: Path, catalog: Lookup | None = None, schemas: Lookup | None = None
    ) -> LoadReport:
        """Replace the directory rules with the valid rules of ``directory`` (problems are returned)."""
        report = load_rules_dir(directory, catalog, schemas)
        self.set_directory_rules(report.rules, report.origins)
        return report

    def set_directory_rules(self, rules: Mapping[str, Rule], files: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self._from_dir = dict(rules)
            self._files = dict(files or {})
            self._rebuild()

    def set_topic_rules(self, rules: Mapping[str, Rule]) -> None:
        """Replace every topic rule at once with already validated rules (a snapshot of the topic)."""
        with self._lock:
            self._from_topic = dict(rules)
            self._rebuild()

    def apply_record(self, key: str, record: CloudEvent | None) -> None:
        """A ``whale.rules`` record (or tombstone); an invalid record is logged and ignored."""
        with self._lock:
            if record is None:
                if self._from_topic.pop(key, None) is not None:
                    self._place(key)
                    log.info("rule_deleted", rule_id=key)
                return
            try:
                rule = validate_rule(record.data)
            except RuleError as exc:
                log.error("rule_record_invalid", rule_id=key, error=str(exc))
                return
            if rule.id != key:
                log.error("rule_record_key_mismatch", key=key, rule_id=rule.id)
                return
            self._from_topic[key] = rule
            self._place(key)
            log.info("rule_saved", rule_id=key, version=rule.version, enabled=rule.enabled)

    def match(self, ctx: Mapping[str, Any]) -> list[Rule]:
        """The enabled rules whose condition holds for ``ctx``."""
        with self._lock:
            return self._index.match(ctx)

    def candidates(self, ctx: Mapping[str, Any]) -> list[Rule]:
        """The enabled rules the index cannot rule out for ``ctx`` (a superset of :meth:`match`)."""
        with self._lock:
            return self._index.candidates(ctx)

    def all(self) -> list[Rule]:
        """Every effective rule, enabled or not, by id."""
        with self._lock:
            merged = {**self._from_dir, **self._from_topic}
            return [merged[k] for k in sorted(merged)]

    def origin(self, rule_id: str) -> dict[str, str]:
        """Where the effective rule of that id comes from (see :func:`origin_of`)."""
        with self._lock:
            return origin_of(rule_id, in_topic=rule_id in self._from_topic, files=self._files)

    def _place(self, key: str) -> None:
        rule = self._from_topic.get(key) or self._from_dir.get(key)
        if rule is None:
            self._index.remove(key)
        else:
            self._index.put(rule)
        self._sized()

    def _rebuild(self) -> None:
        self._index = RuleIndex({**self._from_dir, **self._from_topic}.values())
        self._sized()

    def _sized(self) -> None:
        if self._on_size is not None:
            self._on_size(len(self._index))
