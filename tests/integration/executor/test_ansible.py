"""An Ansible action through the executor on the real Kafka (real ansible-runner, localhost with the
local connection): the per-host recap in the result, a failed task's message in the failure."""

from __future__ import annotations

import pytest
from whale_executor.app import Executor

from whale.producer import EventProducer
from whale.testing import Tap

from .conftest import request_event, send_request

pytestmark = pytest.mark.integration


async def test_playbook_recap_and_failed_task_message_in_the_results(
    executor: Executor, producer: EventProducer, results: Tap, pool: str
) -> None:
    ok = request_event(pool, "test.greet", {"hosts": ["localhost"], "who": "ann"})
    bad = request_event(pool, "test.greet", {"hosts": ["localhost"], "who": "mallory"})
    for event in (ok, bad):
        await send_request(producer, event)
    (done,) = await results.expect("whale.action.succeeded", request_id=ok.id)
    assert done.data["output"]["recap"] == {
        "localhost": {"ok": 1, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 1}
    }
    (failed,) = await results.expect("whale.action.failed", request_id=bad.id)
    assert failed.data["error"] == {
        "message": "playbook greet.yml failed (rc 2): localhost: refusing mallory",
        "retryable": False,
    }
    assert failed.data["output"]["failures"] == [
        {"host": "localhost", "task": "refuse", "message": "refusing mallory", "unreachable": False}
    ]
