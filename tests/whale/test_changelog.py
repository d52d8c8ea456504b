"""Reading a changelog or compacted topic by assignment (whale.changelog: the one consume loop's
variant), from applied offsets to the end or following, with a fake reader."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaException

from whale.binding import KafkaMessage
from whale.changelog import Fetched, PartitionReader, last_per_key, read_to_end, watermarks
from whale.errors import DeliveryError

from .fakes import ChangelogReader, Msg

TOPIC = "app-table-changelog"


def _log(n: int, prefix: bytes = b"k") -> list[tuple[bytes, bytes | None]]:
    return [(prefix + str(i).encode(), str(i).encode()) for i in range(n)]


def _to_end(reader: Any, starts: dict[int, int], ends: dict[int, int], **kwargs: Any) -> list[Fetched]:
    batches: list[Fetched] = []
    read_to_end(reader, TOPIC, starts, ends, batches.append, **kwargs)
    return batches


def test_reads_each_partition_from_its_start_to_its_end_in_batches_with_their_next_offsets() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(5), 1: _log(3)})
    batches = _to_end(reader, {0: 2, 1: 0}, {0: 5, 1: 3}, batch=2)
    offsets = sorted((m.partition(), m.offset()) for b in batches for m in b.records)
    assert offsets == [(0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2)]
    assert all(len(b.records) <= 2 for b in batches)
    last: dict[int, int] = {}
    for b in batches:
        last.update(b.offsets)
    assert last == {0: 5, 1: 3}
    assert [b.caught_up for b in batches][-1] and not any(b.caught_up for b in batches[:-1])
    assert not reader.closed  # the reader is the caller's


def test_a_partition_already_at_its_end_is_not_read() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(4), 1: _log(2)})
    batches = _to_end(reader, {0: 4, 1: 0}, {0: 4, 1: 2})
    assert reader.assigned == [(1, 0)]
    assert [m.partition() for b in batches for m in b.records] == [1, 1]
    assert _to_end(reader, {0: 4}, {0: 4}) == []


def test_an_empty_partition_that_ends_before_its_high_watermark_still_finishes() -> None:
    """Compaction may leave no record up to the end: the partition-EOF event ends the reading."""
    reader: Any = ChangelogReader(TOPIC, {0: _log(2)})
    batches = _to_end(reader, {0: 0}, {0: 5})
    assert [m.offset() for b in batches for m in b.records] == [0, 1]
    assert batches[-1].caught_up


def test_caught_up_is_told_at_the_ends_the_reading_began_with_not_at_records_written_since() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(6)})
    batches = _to_end(reader, {0: 0}, {0: 3}, batch=2)
    assert [[m.offset() for m in b.records] for b in batches] == [[0, 1], [2, 3]]
    assert [b.caught_up for b in batches] == [False, True]


def test_reading_stops_between_batches_once_asked_to() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(10)})
    stop = threading.Event()
    seen = 0

    def take(fetched: Fetched) -> None:
        nonlocal seen
        seen += len(fetched.records)
        stop.set()

    read_to_end(reader, TOPIC, {0: 0}, {0: 10}, take, batch=3, stop=stop)
    assert seen == 3


def test_following_reads_every_partition_says_when_it_caught_up_and_goes_on_until_stopped() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(3), 1: []})
    stop = threading.Event()
    turns: list[Fetched] = []

    def take(fetched: Fetched) -> None:
        turns.append(fetched)
        if len(turns) == 1:
            reader.logs[1].append((b"live", b"1"))  # written after the reading caught up
        else:
            stop.set()

    following = PartitionReader(
        reader, TOPIC, {0: 0, 1: 0}, {0: 3, 1: 0}, take, follow=True, wait=0, stop=stop
    )
    asyncio.run(following.run())
    assert reader.assigned == [(0, 0), (1, 0)]  # every partition, to follow it
    assert [m.offset() for m in turns[0].records] == [0, 1, 2] and turns[0].caught_up
    assert [(m.partition(), m.key()) for m in turns[1].records] == [(1, b"live")] and turns[1].caught_up
    assert len(turns) == 2


def test_following_a_topic_with_nothing_to_read_is_caught_up_at_once() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: []})
    stop = threading.Event()
    turns: list[Fetched] = []

    def take(fetched: Fetched) -> None:
        turns.append(fetched)
        stop.set()

    asyncio.run(PartitionReader(reader, TOPIC, {0: 0}, {0: 0}, take, follow=True, wait=0, stop=stop).run())
    assert len(turns) == 1 and turns[0].records == [] and turns[0].caught_up


class _Fatal:
    def code(self) -> int:
        return -150

    def fatal(self) -> bool:
        return True

    def str(self) -> str:
        return "fenced"


class _FatalMsg(Msg):
    def error(self) -> Any:
        return _Fatal()


class _FatalReader(ChangelogReader):
    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return [_FatalMsg(KafkaMessage(None, None, ()), 0, 0, TOPIC)]


def test_a_fatal_kafka_error_surfaces() -> None:
    reader: Any = _FatalReader(TOPIC, {0: _log(3)})
    with pytest.raises(KafkaException):
        _to_end(reader, {0: 0}, {0: 3})


def test_a_retryable_error_of_the_handler_is_retried_with_the_same_batch_and_others_are_raised() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(2)})
    handed: list[list[int]] = []

    def flaky(fetched: Fetched) -> None:
        handed.append([m.offset() for m in fetched.records])
        if len(handed) == 1:
            raise DeliveryError("store down")

    read_to_end(reader, TOPIC, {0: 0}, {0: 2}, flaky)
    assert handed == [[0, 1], [0, 1]]

    def broken(fetched: Fetched) -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        read_to_end(ChangelogReader(TOPIC, {0: _log(2)}), TOPIC, {0: 0}, {0: 2}, broken)


def test_a_reader_retrying_a_handler_error_ends_once_asked_to_stop() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(2)})
    stop = threading.Event()
    attempts = 0

    def down(fetched: Fetched) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            stop.set()
        raise DeliveryError("store down")

    read_to_end(reader, TOPIC, {0: 0}, {0: 2}, down, stop=stop)
    assert attempts == 3


def test_watermarks_of_every_partition_and_none_for_a_topic_never_written() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(3), 1: []}, low=7)
    assert watermarks(reader, TOPIC) == {0: (7, 10), 1: (7, 7)}
    assert watermarks(reader, "no-such-topic") == {}


def test_a_batch_folds_to_each_keys_last_value_and_a_tombstone_to_none() -> None:
    writes = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None)]
    records = [Msg(KafkaMessage(k, v, ()), n) for n, (k, v) in enumerate(writes)]
    assert last_per_key(records) == {b"a": b"2", b"b": None}
