"""Fakes for the shared consume loop's unit tests: confluent-kafka's fetched records and consumer."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError

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


class _Eof:
    """The error of confluent-kafka's partition-EOF event."""

    def code(self) -> int:
        return int(KafkaError._PARTITION_EOF)

    def fatal(self) -> bool:
        return False


class EofMsg(Msg):
    """The event confluent-kafka hands out when a partition's end is reached."""

    def __init__(self, partition: int, offset: int, topic: str = "t") -> None:
        super().__init__(KafkaMessage(None, None, ()), offset, partition, topic)

    def error(self) -> Any:
        return _Eof()


class ChangelogReader:
    """A consumer reading one topic's partitions by assignment (:mod:`whale.changelog`'s reader):
    ``logs`` holds each partition's records (key, value or None for a tombstone) from offset ``low``."""

    def __init__(self, topic: str, logs: dict[int, list[tuple[bytes, bytes | None]]], low: int = 0) -> None:
        self.topic, self.logs, self.low = topic, logs, low
        self.positions: dict[int, int] = {}
        self.eof_sent: set[int] = set()
        self.assigned: list[tuple[int, int]] = []  # every (partition, offset) ever assigned
        self.closed = False

    def list_topics(self, topic: str, timeout: float) -> Any:
        known = {topic: SimpleNamespace(partitions=dict.fromkeys(self.logs), error=None)}
        return SimpleNamespace(topics=known if topic == self.topic else {})

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        return self.low, self.low + len(self.logs[tp.partition])

    def assign(self, tps: list[Any]) -> None:
        self.positions = {tp.partition: tp.offset for tp in tps}
        self.eof_sent.clear()
        self.assigned.extend((tp.partition, tp.offset) for tp in tps)

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        out: list[Msg] = []
        for partition, position in self.positions.items():
            log = self.logs[partition]
            while len(out) < num_messages and position - self.low < len(log):
                key, value = log[position - self.low]
                out.append(Msg(KafkaMessage(key, value, ()), position, partition, self.topic))
                position += 1
            self.positions[partition] = position
            if position - self.low >= len(log) and partition not in self.eof_sent and len(out) < num_messages:
                self.eof_sent.add(partition)
                out.append(EofMsg(partition, position, self.topic))
        return out

    def close(self) -> None:
        self.closed = True
