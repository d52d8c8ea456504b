"""``/runs`` and ``/approvals`` answer the same bytes over the event center's local store
(:class:`StateView`) as over a view of CloudEvents holding the same records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from whale_event_center.approvals_api import ApprovalsApi
from whale_event_center.runs_api import RunsApi
from whale_event_center.state_view import StateView
from whale_executor.state import state_message

from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.store import LocalStore, StoreSettings
from whale.testing import FakeView

from .fakes import Harness, bearer, make_harness
from .test_approvals_api import run_record
from .test_state_view import Msg

RECORDS: dict[str, dict[str, Any]] = {
    "ops/k1": run_record(),
    "ops/k2": run_record(
        run_id="wf-2",
        idempotency_key="k2",
        started_at=1_700_000_100.0,
        status="finished",
        result_event={"type": "whale.workflow.failed", "time": 1_700_000_200.0, "data": {"error": "boom"}},
    ),
    "ops/k3": {
        "kind": "action",
        "run_id": "act-3",
        "pool": "ops",
        "status": "started",
        "attempt": 2,
        "target": {"kind": "action", "name": "core.noop", "pool": "ops"},
        "started_at": 1_700_000_050.0,
    },
    "ops/pause/act-3": {"kind": "pause", "run_id": "act-3", "paused": True},
    "ops/cancel/wf-1111": {"kind": "cancel", "run_id": "wf-1111"},
    "ops/k4": run_record(run_id="wf-4", idempotency_key="k4", started_at=1_699_999_000.0),
    "ops/approval/wf-4/gate": {
        "kind": "approval",
        "run_id": "wf-4",
        "task": "gate",
        "approved": False,
        "by": "operator-person",
        "comment": "no",
    },
}
READS = [
    "/runs", "/runs?state=active", "/runs?state=waiting", "/runs?state=failed", "/runs?kind=action",
    "/runs?name=host.restart&limit=1&offset=1", "/runs?pool=nope", "/runs/wf-1111", "/runs/act-3",
    "/runs/wf-2", "/runs/none", "/approvals", "/approvals/wf-1111.gate", "/approvals/wf-4.gate",
    "/approvals/wf-2.check",
]  # fmt: skip


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from make_harness()


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[StateView]:
    local = LocalStore(tmp_path / "runs", {"stage": "test"}, StoreSettings(dir=tmp_path, cache_mb=1))
    view = StateView(WhaleSettings(), "whale.executor.state", local=local)
    for key, record in RECORDS.items():
        message = state_message(key, "whale.executor.run", "/whale/executor/ops", record)
        assert message is not None
        view._record(key.encode(), Msg(message.value, list(message.headers)))
    view._caught_up.set()
    yield view
    local.close()


def answers(harness: Harness) -> list[tuple[int, bytes]]:
    out = []
    for path in READS:
        response = harness.client.get(path, headers=bearer("viewer"))
        out.append((response.status_code, response.content))
    return out


def test_the_runs_and_approvals_apis_answer_the_same_over_the_store(
    harness: Harness, stored: StateView
) -> None:
    app: Any = harness.client.app
    fake: FakeView = app.state.components.runs
    for key, record in RECORDS.items():
        fake.records[key] = CloudEvent.create(type="whale.executor.run", source="/t", data=record)
    in_memory = answers(harness)
    runs: RunsApi = app.state.runs_api
    app.state.runs_api = RunsApi(runs.producer, stored, runs.store)
    app.state.approvals_api = ApprovalsApi(runs.producer, stored)
    on_disk = answers(harness)
    assert [status for status, _ in on_disk] == [200] * 7 + [200, 200, 200, 404, 200, 200, 200, 200]
    assert on_disk == in_memory
