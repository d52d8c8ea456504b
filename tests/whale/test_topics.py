"""The topic contract in code and the AsyncAPI document in schemas/ agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from whale import asyncapi
from whale.topics import BY_NAME, TOPICS, actions_topic, pool_topic_spec

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_asyncapi_document_matches_the_code() -> None:
    committed = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    assert committed == asyncapi.generate(SCHEMAS), "run `whale topics asyncapi > schemas/asyncapi.yaml`"


def test_every_event_schema_is_carried_by_a_topic_and_every_carried_type_has_a_schema() -> None:
    carried = {t for spec in TOPICS for t in spec.event_types}
    files = {p.stem for p in (SCHEMAS / "events").glob("*.json")}
    assert files <= carried, f"schemas no topic carries: {sorted(files - carried)}"
    assert carried <= files, f"types without a schema: {sorted(carried - files)}"


def test_event_schemas_are_draft_2020_12_and_named_by_type() -> None:
    for path in (SCHEMAS / "events").glob("*.json"):
        schema = json.loads(path.read_text())
        assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", path.name
        assert schema.get("$id") == path.stem, path.name


def test_compacted_topics_are_compacted_and_others_have_retention() -> None:
    for spec in TOPICS:
        config = spec.config()
        if spec.compacted:
            assert config["cleanup.policy"] == "compact"
        else:
            assert config["cleanup.policy"] == "delete" and int(config["retention.ms"]) > 0


def test_pool_topics() -> None:
    assert actions_topic() == "whale.actions"
    assert actions_topic("db-team") == "whale.actions.db-team"
    assert pool_topic_spec("db-team").partitions == BY_NAME["whale.actions"].partitions
    with pytest.raises(ValueError, match="invalid pool name"):
        actions_topic("Bad Pool")
