"""A batch's sends start in issue order, are awaited together, and a failed event is handed on."""

from __future__ import annotations

import asyncio
from typing import Any

from whale_rule_engine.batches import Pending, Sends, issue, settle


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


class _Message:
    def __init__(self) -> None:
        self.refcount, self.acked = 1, False  # the stream's own reference

    def incref(self) -> None:
        self.refcount += 1


class _Event:
    """A Faust event's ack: the message is acked when its last reference is given back."""

    def __init__(self) -> None:
        self.message = _Message()

    def ack(self) -> None:
        self.message.refcount -= 1
        self.message.acked = self.message.refcount == 0


class _Stream:
    def __init__(self, waiting: int) -> None:
        self.channel = type("Channel", (), {"queue": asyncio.Queue[int]()})()
        for n in range(waiting):
            self.channel.queue.put_nowait(n)


def test_pending_events_are_acked_only_by_the_settle_after_their_sends() -> None:
    """The iterator's own ack leaves a held event unacked; settle acks it once its sends are done."""

    async def run() -> list[bool]:
        pending = Pending(10, _never)
        event = _Event()
        issue(pending.hold(event), asyncio.sleep(0.01))
        event.ack()  # what events() does when the body returns
        assert not event.message.acked
        assert pending.due(_Stream(waiting=0))  # nothing else waiting: settle now
        await pending.settle()
        return [event.message.acked]

    assert asyncio.run(run()) == [True]


def test_a_batch_settles_when_full_or_when_the_agent_does_not_come_back() -> None:
    """With more events waiting the batch grows up to its limit; a buffer emptied under the agent
    (a rebalance) is settled by the timer, so Faust's wait for unacked messages ends."""

    async def run() -> tuple[list[bool], bool]:
        pending = Pending(3, _never, linger=0.01)
        busy = _Stream(waiting=5)
        events = [_Event() for _ in range(3)]
        dues = []
        for event in events:
            pending.hold(event)
            event.ack()
            dues.append(pending.due(busy))
        await pending.settle()
        late = _Event()
        pending.hold(late)
        late.ack()
        assert not pending.due(busy)
        await asyncio.sleep(0.05)  # the agent waits on an emptied buffer; the timer settles
        return dues, late.message.acked and all(e.message.acked for e in events)

    assert asyncio.run(run()) == ([False, False, True], True)


async def _never(event: Any, exc: BaseException) -> None:
    raise AssertionError(f"no send failed, yet {event} was handed on: {exc}")


def test_the_deferred_work_of_a_batch_runs_at_its_settle_before_its_sends_are_awaited_and_acked() -> None:
    """The rule engine renders a batch's matched events in ``before``: the sends it issues are
    awaited with the batch, and the events are acked only after them (also when the timer settles)."""
    order: list[str] = []

    async def run() -> bool:
        deferred: list[Sends] = []

        async def before() -> None:
            batch = deferred[:]
            deferred.clear()
            await asyncio.sleep(0)  # the render hop
            for n, sends in enumerate(batch):
                issue(sends, send(f"rendered-{n}"))

        async def send(name: str) -> None:
            await asyncio.sleep(0.005)
            order.append(name)

        pending = Pending(10, _never, linger=0.01, before=before)
        events = [_Event() for _ in range(2)]
        for event in events:
            deferred.append(pending.hold(event))
            event.ack()
        assert not pending.due(_Stream(waiting=1))  # more waiting, then the buffer empties (rebalance)
        await asyncio.sleep(0.05)  # the timer settles: before, the sends, then the acks
        return all(e.message.acked for e in events)

    assert asyncio.run(run())
    assert order == ["rendered-0", "rendered-1"]
