"""`whale rules explain|validate` and the backtest simulation (no Kafka, no Elasticsearch)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from whale_rule_engine.backtest import parse_since, simulate
from whale_rule_engine.cli import explain_event
from whale_rule_engine.errors import BacktestError

from whale.cli import main as whale_main
from whale.cloudevent import CloudEvent
from whale.rules.model import validate_rule

RULE_YAML = """
id: disk-full
match:
  all:
    - {field: type, equals: alert.fired}
    - {field: data.value, greater: 85}
target: {kind: action, name: create_ticket}
params: {title: "disk full on {{ data.host }}"}
throttle: {key: "{{ data.host }}", once_within: 10m}
"""


def event(value: float, host: str = "web-1", when: datetime | None = None) -> CloudEvent:
    return CloudEvent.create(
        type="alert.fired", source="prom", data={"value": value, "host": host}, time=when or datetime.now(UTC)
    )


def test_explain_lists_matches_and_near_misses_with_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The failing criterion of a near miss is shown with the value seen."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "disk.yaml").write_text(RULE_YAML)
    (tmp_path / "rules" / "other.yaml").write_text(
        "id: cpu\nmatch: {field: type, equals: cpu.high}\ntarget: {kind: action, name: x}\n"
    )
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event(70).to_structured()))
    assert (
        whale_main(["rules", "explain", str(path), "--rules-dir", str(tmp_path / "rules"), "--no-topic"]) == 0
    )
    out = capsys.readouterr().out
    assert "no rule matched" in out
    assert "near miss disk-full" in out and "data.value greater 85 (seen 70)" in out
    path.write_text(json.dumps(event(90).to_structured()))
    whale_main(
        ["rules", "explain", str(path), "--rules-dir", str(tmp_path / "rules"), "--no-topic", "--json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert result["matched"][0]["params"] == {"title": "disk full on web-1"}


def test_explain_reports_render_errors_of_matched_rules() -> None:
    """A matched rule whose params cannot render says why."""
    rule = validate_rule(
        {
            "id": "r",
            "match": {"field": "type", "exists": True},
            "target": {"kind": "action", "name": "x"},
            "params": {"a": "{{ data.nope }}"},
        }
    )
    result = explain_event([rule], event(1))
    assert "nope" in result["matched"][0]["render_error"]


def test_validate_command_reports_refused_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`whale rules validate` exits 1 and names the bad file and field."""
    (tmp_path / "good.yaml").write_text(RULE_YAML)
    (tmp_path / "bad.yaml").write_text(RULE_YAML.replace("greater: 85", "greater: lots"))
    assert whale_main(["rules", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.yaml" in out and "match.all[1].greater" in out and "1 valid, 1 refused" in out


def test_backtest_counts_triggers_and_suppressions_by_event_time() -> None:
    """A storm of alerts triggers once per key per 10 minutes; the rest would be suppressed."""
    rule = validate_rule(yaml.safe_load(RULE_YAML))
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    events = [event(90, "web-1", start + timedelta(seconds=i)) for i in range(50)]
    events += [event(90, "web-2", start + timedelta(seconds=5)), event(10, "web-3", start)]
    events += [event(95, "web-1", start + timedelta(minutes=11))]
    report = simulate(rule, iter(events)).as_dict()
    assert report["scanned"] == 53 and report["matched"] == 52
    assert report["would_trigger"] == 3 and report["would_suppress"] == 49
    assert report["suppressed_by_key"] == {"web-1": 49}


def test_since_parses_durations() -> None:
    """--since takes 30m, 24h, 7d; nonsense is a precise error."""
    assert parse_since("24h") == timedelta(hours=24)
    with pytest.raises(BacktestError):
        parse_since("yesterday")


def test_list_command_shows_each_rule_with_version_and_target(capsys: pytest.CaptureFixture[str]) -> None:
    """`whale rules list` prints the rules in force (here the shipped scenario rules, offline)."""
    rules_dir = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "rules"
    assert whale_main(["rules", "list", "--rules-dir", str(rules_dir), "--no-topic", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_id = {row["id"]: row for row in rows}
    assert by_id["disk-capacity"]["target"] == "workflow disk.remediate (pool default)"
    assert all(row["version"] >= 1 and row["enabled"] for row in rows)
    assert by_id["disk-capacity"]["origin"] == "directory"
    assert by_id["disk-capacity"]["file"] == str(rules_dir / "disk-capacity.yaml")
    assert whale_main(["rules", "list", "--rules-dir", str(rules_dir), "--no-topic"]) == 0
    assert f"[{rules_dir / 'disk-capacity.yaml'}]" in capsys.readouterr().out
