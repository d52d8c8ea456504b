"""The rule engine's throttle table (Faust's ``rocksdb://`` store) is a cache of its changelog: a
worker whose local store was deleted while it was down rebuilds the buckets from the changelog."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from whale.producer import EventProducer

from .re_helpers import Scope, Worker
from .test_rule_engine_worker import TapFactory, throttled_across_restart

pytestmark = pytest.mark.integration


def test_a_worker_whose_table_store_was_deleted_while_down_still_throttles_the_same_key(
    scope: Scope, workers: Callable[..., Worker], tap: TapFactory, producer: EventProducer, tmp_path: Path
) -> None:
    """Store deleted between two runs: the bucket comes back from the changelog (restored before
    Faust's recovery, see whale_rule_engine.table_restore), so the key that passed before the
    restart is throttled after it, and a new key still passes."""
    state = tmp_path / "state"

    def delete_store() -> None:
        stores = [p for p in state.rglob("*") if p.is_dir() and p.name.startswith("faust-")]
        assert stores, f"no Faust store under {state}: {sorted(str(p) for p in state.rglob('*'))[:20]}"
        shutil.rmtree(state)

    env = {"WHALE_STATE_DIR": str(state), "WHALE_RULE_ENGINE_TABLE_STORE": "rocksdb://"}
    throttled_across_restart(scope, workers, tap, producer, tmp_path, env=env, while_down=delete_store)
    assert any(state.rglob("*")), "the second worker did not recreate its store"
    restored = [
        line
        for line in (tmp_path / "second-1.log").read_text().splitlines()
        if '"throttle_table_restored"' in line
    ]
    assert restored, "the second worker did not restore its table before Faust's recovery"
    assert json.loads(restored[0])["records"] >= 1, restored[0]
