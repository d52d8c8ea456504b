"""The executor's intake (the shared loop's per-key ordered variant, configured for a pool): per-key
ordering, committing only finished offsets, the revoke grace (a rebalance lets the revoked partitions'
requests finish, then cancels the rest) and the pool's in-flight gauge."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from whale_executor import metrics
from whale_executor.intake import intake as executor_intake
from whale_executor.settings import Settings

from whale.binding import to_binary
from whale.cloudevent import CloudEvent
from whale.consume_keyed import KeyedConsumer
from whale.consumer import Received
from whale.settings import WhaleSettings

TOPIC = "whale.actions.t"


class Msg:
    def __init__(self, partition: int, offset: int, key: str, n: int | None = None) -> None:
        event = CloudEvent.create(type="whale.test", source="/t", data={"n": offset if n is None else n})
        self._m = to_binary(event, key)
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes | None:
        return self._m.key

    def value(self) -> bytes | None:
        return self._m.value

    def headers(self) -> Any:
        return list(self._m.headers)

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)

    def error(self) -> None:
        return None


class FakeConsumer:
    """Stands in for the Kafka consumer in the revoke callback: records the offsets committed."""

    def __init__(self) -> None:
        self.commits: list[list[tuple[str, int, int]]] = []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])


def intake(handler: Any, **options: Any) -> KeyedConsumer:
    return executor_intake(
        WhaleSettings(kafka_bootstrap="127.0.0.1:1"),
        topic=TOPIC,
        group_id="g",
        producer=None,  # type: ignore[arg-type]
        handler=handler,
        pool="t",
        **options,
    )


def running_intake(handler: Any, **options: Any) -> tuple[KeyedConsumer, FakeConsumer]:
    """An intake bound to the running loop (as ``run()`` does) whose consumer is a fake."""
    loop = intake(handler, **options)
    fake = FakeConsumer()
    loop._consumer = fake
    loop._loop = asyncio.get_running_loop()
    loop._loop_thread = threading.get_ident()
    return loop, fake


async def revoke(loop: KeyedConsumer, *partitions: int) -> None:
    """The rebalance callback, in a worker thread as when librdkafka calls it inside ``_fetch``."""
    revoked = [TopicPartition(TOPIC, p) for p in partitions]
    await asyncio.wait_for(asyncio.to_thread(loop._on_revoke, None, revoked), timeout=10)


async def started(
    *requests: tuple[int, int], grace: float
) -> tuple[KeyedConsumer, FakeConsumer, list[asyncio.Event], list[int]]:
    """An intake running one request per (partition, offset), each with its own key: request ``n``
    waits for ``gates[n]``; the numbers of the requests cancelled are noted in ``cancelled``."""
    gates = [asyncio.Event() for _ in requests]
    cancelled: list[int] = []

    async def handle(received: Received) -> None:
        n = received.event.data["n"]
        try:
            await gates[n].wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    loop, fake = running_intake(handle, revoke_grace=grace)
    for n, (partition, offset) in enumerate(requests):
        loop._dispatch(Msg(partition, offset, f"key-{n}", n=n))
    await asyncio.sleep(0.05)
    return loop, fake, gates, cancelled


def positions(loop: KeyedConsumer) -> list[tuple[int, int]]:
    return [(tp.partition, tp.offset) for tp in loop._positions()]


async def test_same_key_runs_in_order_other_keys_overlap_and_only_finished_offsets_commit() -> None:
    gates = {n: asyncio.Event() for n in range(4)}
    order: list[int] = []

    async def handle(received: Received) -> None:
        n = received.event.data["n"]
        order.append(n)
        await gates[n].wait()

    loop = intake(handle)
    for offset, key in enumerate(["a", "b", "a", "c"]):
        loop._dispatch(Msg(0, offset, key))
    await asyncio.sleep(0.05)
    assert sorted(order) == [0, 1, 3]  # offset 2 (key a) waits for offset 0
    assert [tp.offset for tp in loop._positions()] == [0]
    gates[1].set()
    gates[3].set()
    await asyncio.sleep(0.05)
    assert [tp.offset for tp in loop._positions()] == [0]  # 0 still running: nothing past it commits
    gates[0].set()
    await asyncio.sleep(0.05)
    assert order[-1] == 2
    assert [tp.offset for tp in loop._positions()] == [2]
    gates[2].set()
    await asyncio.sleep(0.05)
    assert [tp.offset for tp in loop._positions()] == [4]
    assert loop.in_flight == 0


async def test_revoke_waits_for_the_revoked_partitions_requests_then_commits_them() -> None:
    loop, fake, gates, cancelled = await started((0, 0), (0, 1), (1, 0), grace=10.0)
    revoking = asyncio.create_task(revoke(loop, 0))
    await asyncio.sleep(0.3)
    assert not revoking.done() and fake.commits == []  # still inside the grace: nothing committed
    gates[1].set()
    await asyncio.sleep(0.3)
    assert not revoking.done() and fake.commits == []  # offset 0 still runs
    gates[0].set()
    await revoking
    assert fake.commits == [[(TOPIC, 0, 2)]]  # both finished within the grace: all committed
    assert cancelled == []
    assert loop.in_flight == 1  # partition 1's request keeps running
    assert positions(loop) == [(1, 0)]


async def test_after_the_grace_a_running_request_is_cancelled_and_its_offset_stays_uncommitted() -> None:
    loop, fake, gates, cancelled = await started((0, 0), (0, 1), (1, 0), grace=0.3)
    gates[0].set()  # offset 0 finishes; offset 1 never does by itself; partition 1 is not revoked
    await asyncio.sleep(0.05)
    await revoke(loop, 0)
    assert cancelled == [1]  # stopped before the callback returned (before the new owner resumes it)
    assert fake.commits == [[(TOPIC, 0, 1)]]  # the cancelled request's offset is where the new owner reads
    assert loop.in_flight == 1 and positions(loop) == [(1, 0)]
    gates[2].set()
    await asyncio.sleep(0.05)
    assert cancelled == [1] and loop.in_flight == 0  # partition 1's request ran to its end
    assert positions(loop) == [(1, 1)]


async def test_revoke_of_an_idle_partition_returns_at_once_and_leaves_other_partitions_alone() -> None:
    loop, fake, gates, cancelled = await started((1, 0), grace=60.0)
    await revoke(loop, 0, 2)  # 60 s grace, but nothing of partitions 0 and 2 runs: no wait
    assert fake.commits == [] and cancelled == [] and loop.in_flight == 1
    gates[0].set()
    await asyncio.sleep(0.05)
    assert positions(loop) == [(1, 1)]


async def test_lost_partitions_requests_are_cancelled_at_once_without_commit() -> None:
    loop, fake, _, cancelled = await started((0, 0), (1, 0), grace=60.0)
    lost = [TopicPartition(TOPIC, 0)]
    await asyncio.wait_for(asyncio.to_thread(loop._on_lost, None, lost), timeout=10)
    assert cancelled == [0] and fake.commits == []
    assert loop.in_flight == 1 and positions(loop) == [(1, 0)]


def test_revoke_grace_is_read_from_the_environment_and_bounded_by_the_poll_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WHALE_EXECUTOR_REVOKE_GRACE", raising=False)
    assert Settings().revoke_grace == 20.0
    monkeypatch.setenv("WHALE_EXECUTOR_REVOKE_GRACE", "7.5")
    assert Settings().revoke_grace == 7.5
    monkeypatch.setenv("WHALE_EXECUTOR_REVOKE_GRACE", "600")
    with pytest.raises(ValueError, match="revoke_grace"):
        Settings()
    with pytest.raises(ValueError, match=r"revoke_grace must be between 0 and 150 seconds .* got 600"):
        intake(None, revoke_grace=600)


async def test_the_pools_in_flight_gauge_follows_the_requests_in_progress() -> None:
    def in_flight() -> float | None:
        return metrics.registry().get_sample_value("whale_executor_in_flight", {"pool": "t"})

    loop, _, gates, _ = await started((0, 0), (1, 0), grace=1.0)
    assert in_flight() == 2
    gates[0].set()
    await asyncio.sleep(0.05)
    assert in_flight() == 1 == loop.in_flight
    gates[1].set()
    await asyncio.sleep(0.05)
    assert in_flight() == 0
