"""The rule engine's process wiring (:mod:`whale_rule_engine.app`)."""

from __future__ import annotations

from pathlib import Path

import faust
from whale_rule_engine.app import TABLE, internal_topics, repartition_topic
from whale_rule_engine.settings import Settings


def test_the_workers_own_topics_are_named_with_its_partitions_so_they_exist_before_it_joins(
    tmp_path: Path,
) -> None:
    settings = Settings(app_id="whale-test-internal", partitions=5)
    app = faust.App(settings.app_id, broker="kafka://127.0.0.1:1", datadir=str(tmp_path), web_enabled=False)
    app.Table(TABLE, partitions=settings.partitions)
    specs = {s.name: s for s in internal_topics(app, settings)}
    assert repartition_topic(settings) == "whale-test-internal-throttle-repartition"
    repartition = specs["whale-test-internal-throttle-repartition"]
    changelog = specs["whale-test-internal-throttle-buckets-changelog"]
    assert (repartition.partitions, repartition.compacted) == (5, False)
    assert (changelog.partitions, changelog.compacted) == (5, True)  # a table's changelog is compacted
