"""A batch's sends start in issue order, are awaited together, and a failed event is handed on."""

from __future__ import annotations

import asyncio
from typing import Any

from whale_rule_engine.batches import Sends, issue, settle


def test_sends_start_in_issue_order_and_the_batch_waits_for_every_acknowledgement() -> None:
    """Each send enqueues in the order issued; settle returns only once all are acknowledged."""
    enqueued: list[str] = []
    acked: list[str] = []

    async def send(name: str, delay: float) -> None:
        enqueued.append(name)  # the producer's enqueue runs in the task's first step
        await asyncio.sleep(delay)
        acked.append(name)

    async def run() -> None:
        batch: list[tuple[Any, Sends]] = []
        for n in range(5):
            sends: Sends = []
            issue(sends, send(f"e{n}-a", 0.02 - n * 0.004))
            issue(sends, send(f"e{n}-b", 0.001))
            batch.append((n, sends))

        async def never(event: Any, exc: BaseException) -> None:
            raise AssertionError(f"no send failed, yet {event} was handed on: {exc}")

        await settle(batch, never)

    asyncio.run(run())
    assert enqueued == [f"e{n}-{s}" for n in range(5) for s in "ab"]
    assert sorted(acked) == sorted(enqueued)


def test_an_event_whose_send_failed_is_handed_on_once_the_others_are_acknowledged() -> None:
    """Only the event with a refused send goes to on_failure (the dead letter), with its error."""
    handed: list[tuple[Any, str]] = []

    async def ok() -> None:
        await asyncio.sleep(0)

    async def refused() -> None:
        raise RuntimeError("Kafka said no")

    async def run() -> None:
        good: Sends = []
        bad: Sends = []
        issue(good, ok())
        issue(bad, ok())
        issue(bad, refused())

        async def dead_letter(event: Any, exc: BaseException) -> None:
            handed.append((event, str(exc)))

        await settle([("good", good), ("bad", bad)], dead_letter)

    asyncio.run(run())
    assert handed == [("bad", "Kafka said no")]
