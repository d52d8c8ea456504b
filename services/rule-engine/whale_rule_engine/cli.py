"""``whale rules list|explain|test|validate``: the rules in force, why an event (does not) match, and a dry run over history
(``history|diff|rollback`` of saved rules: :mod:`whale_rule_engine.history_cli`).

``explain`` reads the rules from a rules directory and/or the compacted ``whale.rules`` topic and
shows, for one event, which rules matched (with their rendered params) and, for the near misses,
which criterion failed with the value seen. ``test`` replays a draft rule over the events stored in
Elasticsearch and reports what it would have triggered and suppressed; it sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from whale import topics
from whale.cloudevent import CloudEvent
from whale.compacted import CompactedView
from whale.enrichment import ENRICHMENT, NO_ENRICHMENT, Enricher, EnrichmentSettings, build
from whale.errors import ConfigError, EventError
from whale.rules.files import LoadReport, load_rules_dir, load_rules_file, rule_documents
from whale.rules.model import Rule, RuleError, validate_rule
from whale.rules.ruleset import RuleSet
from whale.settings import WhaleSettings
from whale_rule_engine import history_cli
from whale_rule_engine.backtest import Report, parse_since, simulate, stored_events
from whale_rule_engine.engine import plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rules", help="list, explain, test and validate rules")
    commands = parser.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="the rules in force (rules directory and whale.rules)")
    listing.add_argument("--rules-dir", type=Path, help="rules directory (YAML; else WHALE_RULES_DIR)")
    listing.add_argument("--no-topic", action="store_true", help="do not read whale.rules from Kafka")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)
    explain = commands.add_parser("explain", help="which rules an event matches, and why the others do not")
    explain.add_argument("event", type=Path, help="a CloudEvent in structured JSON ('-' for stdin)")
    explain.add_argument("--rules-dir", type=Path, help="rules directory (YAML; else WHALE_RULES_DIR)")
    explain.add_argument("--no-topic", action="store_true", help="do not read whale.rules from Kafka")
    explain.add_argument("--limit", type=int, default=5, help="near misses to show (default 5)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(handler=_explain)
    test = commands.add_parser("test", help="dry-run a draft rule over stored events (triggers nothing)")
    test.add_argument("rule", type=Path, help="the rule YAML file")
    test.add_argument("--since", default="24h", help="how far back (e.g. 30m, 24h, 7d; default 24h)")
    test.add_argument("--index", default="whale-events-*", help="Elasticsearch index pattern")
    test.add_argument("--limit", type=int, default=20, help="triggers to list (default 20)")
    test.add_argument("--json", action="store_true", help="machine-readable output")
    test.set_defaults(handler=_test)
    check = commands.add_parser("validate", help="validate rule files offline")
    check.add_argument("path", type=Path, help="a rules directory or one YAML file")
    check.set_defaults(handler=_validate)
    history_cli.register(commands)


# ---------------------------------------------------------------------- explain
def explain_event(
    rules: list[Rule], event: CloudEvent, *, limit: int = 5, enricher: Enricher = NO_ENRICHMENT
) -> dict[str, Any]:
    """What enrichment added (and which lookups failed), matched rules (with rendered params or the
    render error) and the nearest misses, on the event's enriched context as the worker sees it."""
    ctx = enricher.context(event)
    matched: list[dict[str, Any]] = []
    misses: list[tuple[int, int, dict[str, Any]]] = []
    for rule in rules:
        criteria = rule.condition.explain(ctx)
        if rule.condition.evaluate(ctx):
            entry: dict[str, Any] = {"rule": rule.id, "version": rule.version, "enabled": rule.enabled}
            triggers, failures = plan([rule], event, ctx=ctx)
            if triggers:
                entry["params"] = triggers[0].params
                entry["throttle_key"] = triggers[0].throttle_key
            if failures:
                entry["render_error"] = failures[0].reason
            matched.append(entry)
            continue
        failed = [c for c in criteria if not c.passed]
        passed = len(criteria) - len(failed)
        misses.append(
            (
                len(failed),
                -passed,
                {
                    "rule": rule.id,
                    "version": rule.version,
                    "passed": passed,
                    "failed": [c.as_dict() | {"text": c.describe()} for c in failed],
                },
            )
        )
    misses.sort(key=lambda m: (m[0], m[1], m[2]["rule"]))
    near = [m[2] for m in misses if m[2]["passed"] > 0][:limit]
    return {
        "event": {"id": event.id, "type": event.type, "source": event.source},
        "enrichment": ctx[ENRICHMENT],
        "matched": matched,
        "near_misses": near,
    }


def read_event(path: Path) -> CloudEvent:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        return CloudEvent.from_structured(json.loads(text))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the event from {path}: {exc}", field="event") from None
    except EventError as exc:
        raise ConfigError(f"{path}: {exc}", field="event") from None


async def _topic_rules(settings: WhaleSettings) -> dict[str, Rule]:
    view = CompactedView(settings, topics.RULES)
    await view.start(timeout=20)
    try:
        out: dict[str, Rule] = {}
        for key, record in view.items().items():
            try:
                out[key] = validate_rule(record.data)
            except RuleError as exc:
                print(f"warning: whale.rules record {key!r} is invalid: {exc}", file=sys.stderr)
        return out
    finally:
        await view.stop()


def rules_in_force(rules_dir: Path | None, *, topic: bool) -> RuleSet:
    """The worker's rule set: the rules directory (``--rules-dir``, else ``WHALE_RULES_DIR``),
    overridden by the records on ``whale.rules``."""
    rules = RuleSet()
    directory = rules_dir if rules_dir is not None else WhaleSettings().rules_dir
    if directory is not None:
        report = rules.load_directory(directory)
        for where, problem in report.problems:
            print(f"warning: {where}: {problem}", file=sys.stderr)
    if topic:
        rules.set_topic_rules(asyncio.run(_topic_rules(WhaleSettings())))
    return rules


def _list(args: argparse.Namespace) -> int:
    ruleset = rules_in_force(args.rules_dir, topic=not args.no_topic)
    rows = [
        {
            "id": r.id,
            "version": r.version,
            "enabled": r.enabled,
            "target": f"{r.target.kind} {r.target.name} (pool {r.target.pool})",
            "description": r.description,
            **ruleset.origin(r.id),
        }
        for r in ruleset.all()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "" if row["enabled"] else "  (disabled)"
        where = row.get("file") or "whale.rules" + (
            f", overrides {row['overrides']}" if "overrides" in row else ""
        )
        print(
            f"{row['id']:32} v{row['version']:<4} -> {row['target']}{state}  {row['description']}  [{where}]"
        )
    if not rows:
        print("no rules")
    return 0


def _explain(args: argparse.Namespace) -> int:
    event = read_event(args.event)
    rules = rules_in_force(args.rules_dir, topic=not args.no_topic).all()
    enricher = build(EnrichmentSettings())  # WHALE_ENRICH_*, as the worker has them
    result = explain_event(rules, event, limit=args.limit, enricher=enricher)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"event {event.id} ({event.type} from {event.source}): {len(rules)} rules")
    enrichment = result["enrichment"]
    for place, found in enrichment.items():
        if place != "errors":
            print(f"  enrichment.{place}: {json.dumps(found, default=str)[:300]}")
    for problem in enrichment.get("errors", []):
        print(f"  enrichment FAILED ({problem['provider']}): {problem['message']}")
    for m in result["matched"]:
        state = "" if m["enabled"] else " (disabled)"
        detail = (
            f"render error: {m['render_error']}"
            if "render_error" in m
            else f"params {json.dumps(m.get('params'))}"
        )
        print(f"  MATCH {m['rule']} v{m['version']}{state}: {detail}")
    if not result["matched"]:
        print("  no rule matched")
    for near in result["near_misses"]:
        print(f"  near miss {near['rule']} v{near['version']} ({near['passed']} criteria passed):")
        for c in near["failed"]:
            print(f"      {c['where']}: {c['text']}")
    return 0


# ---------------------------------------------------------------------- test (backtest)
def load_draft(path: Path) -> Rule:
    try:
        docs = rule_documents(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", field="rule") from None
    if len(docs) != 1:
        raise ConfigError(f"{path} must hold exactly one rule (found {len(docs)})", field="rule")
    return validate_rule(docs[0])


def _test(args: argparse.Namespace) -> int:
    rule = load_draft(args.rule)
    since = parse_since(args.since)
    types = rule.condition.required_equalities().get(("type",))
    type_names = sorted(str(v) for kind, v in types if kind == "s") if types else None
    report = Report()
    events = stored_events(WhaleSettings(), since, index=args.index, types=type_names, counter=report)
    enricher = build(EnrichmentSettings())  # as the worker enriches (today's inventory and CMDB)
    result = _merge(simulate(rule, events, enricher=enricher), report).as_dict(limit=args.limit)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"rule {rule.id} v{rule.version} over the last {args.since} (nothing is sent):")
    print(f"  scanned {result['scanned']} events, matched {result['matched']}")
    print(f"  would trigger {result['would_trigger']}, throttle would suppress {result['would_suppress']}")
    for key, count in sorted(result["suppressed_by_key"].items()):
        print(f"      suppressed for key {key!r}: {count}")
    for t in result["triggers"]:
        print(
            f"  {t['time']} event {t['event_id']}: {t['target']['kind']} {t['target']['name']} {json.dumps(t['params'])}"
        )
    if result["render_failures"]:
        print(f"  render failures: {result['render_failures']}")
        for f in result["failures"]:
            print(f"      event {f['event_id']}: {f['reason']}")
    return 0


def _merge(report: Report, counter: Report) -> Report:
    report.unreadable += counter.unreadable
    return report


# ---------------------------------------------------------------------- validate
def _validate(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.is_dir():
        report = load_rules_dir(path)
    else:
        report = LoadReport()
        load_rules_file(path, report)
    for where, problem in report.problems:
        print(f"{where}: {problem}")
    for where, warning in report.warnings:
        print(f"{where}: warning: {warning}")
    print(f"{len(report.rules)} valid, {len(report.problems)} refused")
    return 1 if report.problems else 0
