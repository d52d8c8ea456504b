"""The request loop's bookkeeping: per-key ordering and committing only finished offsets."""

from __future__ import annotations

import asyncio
from typing import Any

from whale_executor.intake import Intake

from whale.binding import to_binary
from whale.cloudevent import CloudEvent
from whale.consumer import Received
from whale.settings import WhaleSettings


class Msg:
    def __init__(self, partition: int, offset: int, key: str) -> None:
        event = CloudEvent.create(type="whale.test", source="/t", data={"n": offset})
        self._m = to_binary(event, key)
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return "whale.actions.t"

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

    def error(self) -> None:
        return None


def intake(handler: Any) -> Intake:
    return Intake(
        WhaleSettings(kafka_bootstrap="127.0.0.1:1"),
        topic="whale.actions.t",
        group_id="g",
        producer=None,  # type: ignore[arg-type]
        handler=handler,
        pool="t",
    )


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
