"""The rule engine matches and renders on the enriched event; explain shows the enrichment."""

from __future__ import annotations

from pathlib import Path

from whale_rule_engine.cli import explain_event
from whale_rule_engine.engine import action_request, plan

from tests.whale.test_enrichment import alert, inventory
from whale.enrichment import build
from whale.rules.model import validate_rule


def test_rules_match_and_templates_render_on_enriched_fields(tmp_path: Path) -> None:
    rule = validate_rule(
        {
            "id": "disk",
            "match": {"field": "enrichment.host.labels.env", "equals": "prod"},
            "target": {"kind": "workflow", "name": "disk.remediate"},
            "params": {
                "log_dir": "{{ enrichment.host.facts.log_dir }}",
                "host": "{{ enrichment.host.name }}",
            },
        }
    )
    enricher = build(inventory(tmp_path))
    event = alert("vm-web-01:9100")
    ctx = enricher.context(event)
    assert rule.condition.evaluate(ctx)
    [trigger], _ = plan([rule], event, ctx=ctx)
    assert trigger.params == {"log_dir": "/var/log/app", "host": "vm-web-01"}
    assert trigger.enrichment is not None and trigger.enrichment["host"]["name"] == "vm-web-01"
    assert action_request(trigger, source="s").data["enrichment"]["host"]["name"] == "vm-web-01"


def test_explain_shows_the_enrichment_and_its_failures(tmp_path: Path) -> None:
    enricher = build(inventory(tmp_path))
    result = explain_event([], alert("vm-nope:9100"), enricher=enricher)
    assert result["enrichment"]["errors"][0]["provider"] == "inventory"


def test_a_render_that_needed_a_failed_lookup_says_so_in_its_reason(tmp_path: Path) -> None:
    rule = validate_rule(
        {
            "id": "disk",
            "match": {"field": "type", "equals": "prometheus.alert.firing"},
            "target": {"kind": "workflow", "name": "disk.remediate"},
            "params": {"log_dir": "{{ enrichment.host.facts.log_dir }}"},
        }
    )
    event = alert("vm-nope:9100")
    _, [failure] = plan([rule], event, ctx=build(inventory(tmp_path)).context(event))
    assert "enrichment failed: inventory: no inventory host named or addressed vm-nope" in failure.reason


def test_a_backtest_enriches_like_the_worker(tmp_path: Path) -> None:
    from whale_rule_engine.backtest import simulate

    rule = validate_rule(
        {
            "id": "prod",
            "match": {"field": "enrichment.host.labels.env", "equals": "prod"},
            "target": {"kind": "workflow", "name": "disk.remediate"},
            "params": {"log_dir": "{{ enrichment.host.facts.log_dir }}"},
        }
    )
    events = [alert("vm-web-01:9100"), alert("db-01:9100")]
    report = simulate(rule, iter(events), enricher=build(inventory(tmp_path))).as_dict(limit=5)
    assert report["matched"] == 1 and report["triggers"][0]["params"] == {"log_dir": "/var/log/app"}
    assert simulate(rule, iter(events)).as_dict(limit=5)["matched"] == 0  # without enrichment
