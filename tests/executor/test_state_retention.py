"""Retention of the executor's run state: finished runs are tombstoned after the retention."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from whale_executor.state import StateStore

from whale.settings import WhaleSettings
from whale.store import open_store
from whale.testing import FakeProducer

DAY = 24 * 3600.0


def store_with(records: dict[str, dict[str, Any]]) -> tuple[StateStore, FakeProducer]:
    producer = FakeProducer()
    local = open_store(f"exec-{uuid.uuid4().hex}", {"stage": "test"})  # under the tests' WHALE_STATE_DIR
    store = StateStore(WhaleSettings(), producer, pool="p", source="/test", local=local)  # type: ignore[arg-type]
    for key, record in records.items():
        store._apply(key, record)
    return store, producer


def test_put_stamps_each_record_with_the_time_it_was_recorded() -> None:
    store, producer = store_with({})
    record = asyncio.run(store.put("p/k1", {"kind": "action", "status": "started"}))
    assert isinstance(record["recorded_at"], float)
    assert producer.events("whale.executor.state")[0].data["recorded_at"] == record["recorded_at"]


def test_only_finished_runs_older_than_the_retention_expire() -> None:
    """A started run never expires (it must be resumed); a recent finished run stays too."""
    now = 100 * DAY
    store, _ = store_with(
        {
            "p/old-done": {"kind": "action", "status": "finished", "recorded_at": now - 8 * DAY},
            "p/new-done": {"kind": "action", "status": "finished", "recorded_at": now - 1 * DAY},
            "p/old-started": {"kind": "action", "status": "started", "recorded_at": now - 30 * DAY},
        }
    )
    assert store.expired(now=now, retention=7 * DAY) == ["p/old-done"]


def test_approvals_expire_with_their_run_or_when_the_run_is_unknown() -> None:
    now = 100 * DAY
    old = now - 8 * DAY
    store, _ = store_with(
        {
            "p/wf-done": {"kind": "workflow", "run_id": "r1", "status": "finished", "recorded_at": old},
            "p/wf-waiting": {"kind": "workflow", "run_id": "r2", "status": "running", "recorded_at": old},
            "p/approval/r1/ok": {"kind": "approval", "run_id": "r1", "recorded_at": old},
            "p/approval/r2/ok": {"kind": "approval", "run_id": "r2", "recorded_at": old},
            "p/approval/r9/ok": {"kind": "approval", "run_id": "r9", "recorded_at": old},
        }
    )
    assert store.expired(now=now, retention=7 * DAY) == ["p/wf-done", "p/approval/r1/ok", "p/approval/r9/ok"]


def test_sweep_writes_a_tombstone_per_expired_key_and_forgets_it() -> None:
    now = 100 * DAY
    store, producer = store_with(
        {"p/wf": {"kind": "workflow", "run_id": "r1", "status": "finished", "recorded_at": now - 8 * DAY}}
    )
    assert store.run_key_of("r1") == "p/wf"
    assert asyncio.run(store.sweep(retention=7 * DAY, now=now)) == 1
    assert [(t, m.key, m.value) for t, m in producer.messages] == [("whale.executor.state", b"p/wf", None)]
    assert store.get("p/wf") is None and store.run_key_of("r1") is None
    assert asyncio.run(store.sweep(retention=7 * DAY, now=now)) == 0


def test_records_written_before_the_stamp_count_from_when_they_were_read() -> None:
    store, _ = store_with({"p/legacy": {"kind": "action", "status": "finished"}})
    recorded = store.get("p/legacy")
    assert recorded is not None and isinstance(recorded["recorded_at"], float)


def test_records_read_while_catching_up_are_stored_as_written_and_the_last_one_wins() -> None:
    """A rebuild stages a plain record without decoding it; a workflow record (its run id is
    indexed) and an undecodable one take the decoding path."""
    store, _ = store_with({})
    store.catching_up = True
    store._begin()
    first = b'{"kind": "action", "status": "started", "seq": 2, "recorded_at": 1.0}'
    last = b'{"kind": "action", "status": "finished", "seq": 1, "recorded_at": 2.0}'
    store._read("p/a", first)
    store._read("p/a", last)  # the topic's order wins while catching up, whatever the seq
    store._read("p/w", b'{"kind": "workflow", "run_id": "r1", "seq": 1, "recorded_at": 1.0}')
    store._read("p/bad", b"not json")
    store._applied({0: 4})
    assert store.get("p/a") == {"kind": "action", "status": "finished", "seq": 1, "recorded_at": 2.0}
    assert store.run_key_of("r1") == "p/w"
    assert store.get("p/bad") is None and store.local.offset(0) == 4


def test_a_live_record_older_than_the_stored_one_is_ignored_once_caught_up() -> None:
    store, _ = store_with({"p/a": {"kind": "action", "status": "finished", "seq": 3, "recorded_at": 1.0}})
    store._begin()
    store._read("p/a", b'{"kind": "action", "status": "started", "seq": 2, "recorded_at": 1.0}')
    store._applied({0: 1})
    assert store.get("p/a") is not None and store.get("p/a")["seq"] == 3  # type: ignore[index]
