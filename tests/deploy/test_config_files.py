"""The configuration the chart ships or mounts (rules, actions, adapters) is valid for the services that load it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from whale.cloudevent import CloudEvent
from whale.rules.files import rule_documents
from whale.rules.model import validate_rule

from .helm import PRODUCTION_VALUES, Manifest, by_kind

pytestmark = pytest.mark.timeout(3600)


def test_production_actions_load_and_its_rules_validate_against_that_catalogue(tmp_path: Path) -> None:
    """The executor loads config.actions as its pools would (files in /etc/whale/actions), and every
    rule of config.rules validates against the resulting catalogue (target exists, params fit)."""
    from whale_executor.catalog import load_catalog

    config = yaml.safe_load(PRODUCTION_VALUES.read_text())["config"]
    for name, text in config["actions"].items():
        (tmp_path / name).write_text(text)
    catalog = load_catalog(pool="default", dirs=[tmp_path])
    published = CloudEvent.create(
        type="whale.catalog.published", source="tests/deploy", data=catalog.describe(), subject="default"
    )
    lookup = {"default": published}
    rules = [validate_rule(doc, lookup) for text in config["rules"].values() for doc in rule_documents(text)]
    assert [rule.id for rule in rules] == ["disk-capacity"]


def test_the_adapters_configuration_the_chart_mounts_parses(everything_manifests: list[Manifest]) -> None:
    """adapters.config, rendered into the adapters ConfigMap, is a valid adapters configuration."""
    from whale_adapters.config import parse_adapters

    manifests = everything_manifests
    text = by_kind(manifests, "ConfigMap")["whale-adapters"]["data"]["adapters.yaml"]
    config = parse_adapters(yaml.safe_load(text), origin="adapters.yaml")
    assert [w.name for w in config.webhooks] == ["shop"]
    assert [p.name for p in config.pollers] == ["inventory"]
