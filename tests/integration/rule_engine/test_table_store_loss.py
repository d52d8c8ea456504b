"""The rule engine's throttle table (Faust's ``rocksdb://`` store) is a cache of its changelog: a
worker whose local store was deleted while it was down rebuilds the buckets from the changelog."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from whale import topics
from whale.binding import from_kafka
from whale.producer import EventProducer

from .re_helpers import Scope, Worker, send
from .test_rule_engine_worker import TapFactory, alert, alert_rule, throttled_of, write_rules

pytestmark = pytest.mark.integration


def test_a_worker_whose_table_store_was_deleted_while_down_still_throttles_the_same_key(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """Store deleted between two runs: the bucket comes back from the changelog, so the key that
    passed before the restart is throttled after it, and a new key still passes."""
    state = tmp_path / "state"
    env = {"WHALE_STATE_DIR": str(state), "WHALE_RULE_ENGINE_TABLE_STORE": "rocksdb://"}
    rules = write_rules(tmp_path / "rules", alert_rule(scope))
    actions = tap(scope.actions_topic, lambda m: True)
    notices = tap(topics.RESULTS, throttled_of(scope))
    first = workers(scope.app_id, rules, name="first", env=env)
    first.wait_ready()
    send(producer, topics.EVENTS, alert(scope, host="web-1"))
    assert len(actions.wait_messages(1)) == 1
    actions.settle(3.0)  # let the table's changelog write and the offset commit happen
    assert first.stop() == 0
    stores = [p for p in state.rglob("*") if p.is_dir() and p.name.startswith("faust-")]
    assert stores, f"no Faust store under {state}: {sorted(str(p) for p in state.rglob('*'))[:20]}"
    shutil.rmtree(state)

    second = workers(scope.app_id, rules, name="second", env=env)
    second.wait_ready()
    send(producer, topics.EVENTS, alert(scope, host="web-1"))
    send(producer, topics.EVENTS, alert(scope, host="web-2"))
    assert len(notices.wait_messages(1)) == 1
    assert len(actions.wait_messages(2)) == 2
    titles = [from_kafka(m).data["params"]["title"] for m in actions.settle()]
    assert titles == ["disk full on web-1", "disk full on web-2"]
    assert from_kafka(notices.messages[0]).data["key"] == "web-1"
    assert any(state.rglob("*")), "the second worker did not recreate its store"
