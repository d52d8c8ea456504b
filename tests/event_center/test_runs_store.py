"""The runs view's layout on disk: listings newest first, filtered by state (``active`` too), kind,
name and pool, with exact totals from counters; pending approvals oldest first; a changed record, an
answer or a tombstone takes back what the run had listed; and every listing equals the in-memory one."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from whale_event_center import runs_store
from whale_event_center.runs_store import StoredBook
from whale_event_center.runs_view import MemoryBook, RunFilter

from whale.store import LocalStore, StoreSettings

T0 = 1_700_000_000.0


def run(run_id: str, n: int, **changes: Any) -> dict[str, Any]:
    """An action run started ``n`` minutes after T0."""
    record: dict[str, Any] = {"kind": "action", "run_id": run_id, "pool": "ops", "status": "started",
                              "target": {"kind": "action", "name": "core.noop", "pool": "ops"},
                              "started_at": T0 + 60 * n, "tasks": {}}  # fmt: skip
    record.update(changes)
    return record


def workflow(run_id: str, n: int, *, waiting: bool = True, **changes: Any) -> dict[str, Any]:
    gate = {"status": "waiting" if waiting else "succeeded", "message": "go?", "since": T0 + 60 * n + 1,
            "approvers": {"role": "operator"}}  # fmt: skip
    return run(run_id, n, kind="workflow", workflow="host.restart", tasks={"gate": gate}, **changes)


def finished(result: str = "whale.action.succeeded") -> dict[str, Any]:
    return {"status": "finished", "result_event": {"type": result, "time": "2023-11-15T00:00:00Z"}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    local = LocalStore(tmp_path / "runs", {"stage": "test"}, StoreSettings(dir=tmp_path, cache_mb=1))
    yield local
    local.close()


class Both:
    """The same records in the store and in memory."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.records: dict[str, Any] = {}

    def put(self, key: str, record: dict[str, Any] | None) -> None:
        batch = self.store.batch()
        value = None if record is None else json.dumps(record).encode()
        runs_store.apply(batch, key, value, record)
        self.store.commit(batch)
        if record is None:
            self.records.pop(key, None)
        else:
            self.records[key] = record

    def books(self) -> tuple[StoredBook, MemoryBook]:
        return StoredBook(self.store), MemoryBook(self.records)

    def page(self, wanted: RunFilter, offset: int = 0, limit: int = 100) -> tuple[list[str], int]:
        stored, memory = self.books()
        found, total = stored.runs_page(wanted, offset, limit)
        assert (found, total) == memory.runs_page(wanted, offset, limit)
        return [r["run_id"] for r in found], total


def test_runs_are_listed_newest_first_with_their_total_and_pages(store: LocalStore) -> None:
    both = Both(store)
    for n in (3, 1, 4, 2):
        both.put(f"ops/k{n}", run(f"a{n}", n))
    assert both.page(RunFilter()) == (["a4", "a3", "a2", "a1"], 4)
    assert both.page(RunFilter(), offset=1, limit=2) == (["a3", "a2"], 4)
    assert both.page(RunFilter(), offset=9) == ([], 4)


def test_a_state_filter_reads_its_state_and_active_merges_running_waiting_and_paused(
    store: LocalStore,
) -> None:
    both = Both(store)
    both.put("ops/k1", run("a1", 1, **finished()))
    both.put("ops/k2", workflow("w2", 2))
    both.put("ops/k3", run("a3", 3))
    both.put("ops/k4", run("a4", 4, **finished("whale.action.failed")))
    both.put("ops/k5", workflow("w5", 5, waiting=False))
    both.put("ops/pause/w5", {"kind": "pause", "run_id": "w5", "paused": True})
    assert both.page(RunFilter("active")) == (["w5", "a3", "w2"], 3)
    assert both.page(RunFilter("active"), offset=1, limit=1) == (["a3"], 3)
    assert both.page(RunFilter("succeeded")) == (["a1"], 1)
    assert both.page(RunFilter("failed")) == (["a4"], 1)
    assert both.page(RunFilter("waiting")) == (["w2"], 1)
    assert both.page(RunFilter("timed_out")) == ([], 0)


def test_kind_name_and_pool_filter_and_count_with_any_state(store: LocalStore) -> None:
    both = Both(store)
    both.put("ops/k1", run("a1", 1))
    both.put("ops/k2", workflow("w2", 2))
    both.put("db/k3", run("a3", 3, pool="db", target={"name": "db.vacuum"}))
    both.put("db/k4", workflow("w4", 4, pool="db", **finished("whale.workflow.completed")))
    for wanted, ids in [
        (RunFilter(kind="workflow"), ["w4", "w2"]),
        (RunFilter(pool="db"), ["w4", "a3"]),
        (RunFilter(name="host.restart", pool="db"), ["w4"]),
        (RunFilter("active", kind="action"), ["a3", "a1"]),
        (RunFilter("active", kind="action", pool="db"), ["a3"]),
        (RunFilter("succeeded", name="core.noop"), []),
        (RunFilter(name="nothing"), []),
    ]:
        assert both.page(wanted) == (ids, len(ids)), wanted
    assert both.page(RunFilter(pool="db"), offset=1) == (["a3"], 2)


def test_a_new_record_of_a_run_moves_it_and_a_tombstone_removes_it_everywhere(store: LocalStore) -> None:
    both = Both(store)
    both.put("ops/k1", run("a1", 1))
    both.put("ops/k2", run("a2", 2))
    both.put("ops/k1", run("a1", 1, **finished()))
    assert both.page(RunFilter("active")) == (["a2"], 1)
    assert both.page(RunFilter("succeeded")) == (["a1"], 1)
    both.put("ops/k1", None)
    both.put("ops/k2", None)
    assert both.page(RunFilter()) == ([], 0)
    assert StoredBook(store).get("a1") is None
    assert list(store.items()) == []  # nothing left behind: entries, counters, run ids


def test_pending_approvals_are_listed_oldest_first_until_answered_or_ended(store: LocalStore) -> None:
    both = Both(store)
    both.put("ops/k2", workflow("w2", 2))
    both.put("ops/k1", workflow("w1", 1))
    both.put("ops/k3", workflow("w3", 3, waiting=False))
    stored, memory = both.books()
    assert [a["id"] for a in stored.approvals()] == ["w1.gate", "w2.gate"]
    assert stored.approvals() == memory.approvals()
    both.put("ops/approval/w1/gate", {"kind": "approval", "run_id": "w1", "task": "gate", "approved": True})
    both.put("ops/k2", workflow("w2", 2, **finished("whale.workflow.failed")))
    stored, memory = both.books()
    assert stored.approvals() == memory.approvals() == []
    w1 = stored.get("w1")
    assert w1 is not None and stored.approval(w1, "gate")["status"] == "approved"
    both.put("ops/approval/w1/gate", None)  # the answer's tombstone: pending again
    assert [a["id"] for a in StoredBook(store).approvals()] == ["w1.gate"]


def test_an_answer_recorded_before_its_run_applies_once_the_run_is(store: LocalStore) -> None:
    both = Both(store)
    both.put("ops/pause/w1", {"kind": "pause", "run_id": "w1", "paused": True})
    both.put("ops/cancel/w1", {"kind": "cancel", "run_id": "w1"})
    both.put("ops/k1", workflow("w1", 1, waiting=False))
    assert both.page(RunFilter("active")) == (["w1"], 1)
    stored = StoredBook(store)
    w1 = stored.get("w1")
    assert w1 is not None
    assert stored.detail(w1) == MemoryBook(both.records).detail(w1)
    assert stored.detail(w1)["state"] == "paused" and stored.detail(w1)["cancel_requested"]


def test_many_changes_leave_the_same_listings_as_memory(store: LocalStore) -> None:
    both = Both(store)
    states = [{}, finished(), finished("whale.action.timed_out"), finished("whale.workflow.cancelled")]
    for i, (pool, status) in enumerate(itertools.product(("ops", "db"), states)):
        both.put(f"{pool}/k{i}", run(f"a{i}", i, pool=pool, **status))
        both.put(f"{pool}/w{i}", workflow(f"w{i}", 100 - i, pool=pool, waiting=i % 2 == 0, **status))
        if i % 3 == 0:
            both.put(f"{pool}/pause/w{i}", {"kind": "pause", "run_id": f"w{i}", "paused": i % 2 == 0})
    for i in range(0, 8, 3):
        pool = "ops" if i < 4 else "db"
        both.put(f"{pool}/k{i}", None)
        both.put(f"{pool}/w{i + 1}", workflow(f"w{i + 1}", 50, pool=pool, **finished()))
    for state in ("all", "active", "running", "waiting", "succeeded", "timed_out", "cancelled"):
        for pool in (None, "db"):
            for offset in (0, 3):
                both.page(RunFilter(state, pool=pool), offset=offset, limit=4)
                both.page(RunFilter(state, kind="workflow", pool=pool), offset=offset, limit=4)
    stored, memory = both.books()
    assert stored.approvals() == memory.approvals()


def test_a_record_that_is_not_a_run_is_kept_but_never_listed(store: LocalStore) -> None:
    both = Both(store)
    both.put("ops/k1", run("a1", 1))
    batch = store.batch()
    runs_store.apply(batch, "ops/k1", b"[1,2]", None)  # the key's record is no longer a run
    store.commit(batch)
    assert StoredBook(store).runs_page(RunFilter(), 0, 10) == ([], 0)
    assert StoredBook(store).get("a1") is None
