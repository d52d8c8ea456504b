"""Fakes for the shared consume loop's unit tests: confluent-kafka's fetched records and consumer."""

from __future__ import annotations

import time
from typing import Any

import pytest

from whale import consumer as consumer_module
from whale.binding import KafkaMessage, to_binary
from whale.cloudevent import CloudEvent


class Msg:
    """A fetched record, as confluent-kafka hands it out."""

    def __init__(self, message: KafkaMessage, offset: int, partition: int = 0, topic: str = "t") -> None:
        self._m, self._o, self._p, self._t = message, offset, partition, topic

    def error(self) -> None:
        return None

    def key(self) -> bytes | None:
        return self._m.key

    def value(self) -> bytes | None:
        return self._m.value

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._m.headers)

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._o)

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class FakeConsumer:
    """Records every consume call; ``fetched`` is what librdkafka holds already, ``arriving`` what
    comes in while a consume call waits."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.fetched: list[Msg] = []
        self.arriving: list[Msg] = []
        self.calls: list[tuple[int, float]] = []
        self.commits: list[list[tuple[str, int, int]]] = []
        self.subscribed_with: dict[str, Any] = {}
        self.closed = False
        self.partitions: list[Any] = []  # assigned (to ``on_assign``) when subscribing
        self.flow: list[tuple[str, list[tuple[str, int]]]] = []  # pause and resume calls

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.subscribed_with = callbacks
        if self.partitions and "on_assign" in callbacks:
            callbacks["on_assign"](self, self.partitions)

    def assignment(self) -> list[Any]:
        return list(self.partitions)

    def pause(self, partitions: list[Any]) -> None:
        self.flow.append(("pause", [(tp.topic, tp.partition) for tp in partitions]))

    def resume(self, partitions: list[Any]) -> None:
        self.flow.append(("resume", [(tp.topic, tp.partition) for tp in partitions]))

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        self.calls.append((num_messages, timeout))
        if timeout > 0 and not self.fetched:
            if not self.arriving:
                time.sleep(0.005)
            self.fetched, self.arriving = self.arriving, []
        out, self.fetched = self.fetched[:num_messages], self.fetched[num_messages:]
        return out

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])

    def close(self) -> None:
        self.closed = True


def event_msg(offset: int, type_: str = "t.happened", partition: int = 0) -> Msg:
    """A fetched CloudEvent record."""
    event = CloudEvent.create(type=type_, source="/t", subject="k", data={"offset": offset})
    return Msg(to_binary(event), offset, partition)


def fake_consumers(monkeypatch: pytest.MonkeyPatch) -> list[FakeConsumer]:
    """Make the consume loop create :class:`FakeConsumer` objects; returns the list of those made."""
    consumers: list[FakeConsumer] = []

    def factory(config: dict[str, Any]) -> FakeConsumer:
        consumers.append(FakeConsumer(config))
        return consumers[-1]

    monkeypatch.setattr(consumer_module, "Consumer", factory)
    return consumers
