"""Bulk reading of a changelog from applied offsets to its end (whale.changelog), with a fake reader."""

from __future__ import annotations

import threading
from typing import Any

from whale.binding import KafkaMessage
from whale.changelog import last_per_key, read, read_to_end, watermarks

from .fakes import ChangelogReader, Msg

TOPIC = "app-table-changelog"


def _log(n: int, prefix: bytes = b"k") -> list[tuple[bytes, bytes | None]]:
    return [(prefix + str(i).encode(), str(i).encode()) for i in range(n)]


def test_reads_each_partition_from_its_start_to_its_end_in_batches_with_their_next_offsets() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(5), 1: _log(3)})
    batches = list(read_to_end(reader, TOPIC, {0: 2, 1: 0}, {0: 5, 1: 3}, batch=2))
    offsets = sorted((m.partition(), m.offset()) for b in batches for m in b.records)
    assert offsets == [(0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2)]
    assert all(len(b.records) <= 2 for b in batches)
    last: dict[int, int] = {}
    for b in batches:
        last.update(b.offsets)
    assert last == {0: 5, 1: 3}
    assert [b.caught_up for b in batches][-1] and not any(b.caught_up for b in batches[:-1])


def test_a_partition_already_at_its_end_is_not_read() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(4), 1: _log(2)})
    batches = list(read_to_end(reader, TOPIC, {0: 4, 1: 0}, {0: 4, 1: 2}))
    assert reader.assigned == [(1, 0)]
    assert [m.partition() for b in batches for m in b.records] == [1, 1]
    assert list(read_to_end(reader, TOPIC, {0: 4}, {0: 4})) == []


def test_an_empty_partition_that_ends_before_its_high_watermark_still_finishes() -> None:
    """Compaction may leave no record up to the end: the partition-EOF event ends the reading."""
    reader: Any = ChangelogReader(TOPIC, {0: _log(2)})
    batches = list(read_to_end(reader, TOPIC, {0: 0}, {0: 5}))
    assert [m.offset() for b in batches for m in b.records] == [0, 1]
    assert batches[-1].caught_up


def test_reading_stops_between_batches_once_asked_to() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(10)})
    stop = threading.Event()
    seen = 0
    for fetched in read_to_end(reader, TOPIC, {0: 0}, {0: 10}, batch=3, stop=stop):
        seen += len(fetched.records)
        stop.set()
    assert seen == 3


def test_following_reads_every_partition_says_when_it_caught_up_and_goes_on_until_stopped() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(3), 1: []})
    stop = threading.Event()
    turns = []
    for fetched in read(reader, TOPIC, {0: 0, 1: 0}, {0: 3, 1: 0}, follow=True, wait=0, stop=stop):
        turns.append(fetched)
        if len(turns) == 4:
            stop.set()
    assert reader.assigned == [(0, 0), (1, 0)]  # every partition, to follow it
    assert [m.offset() for t in turns for m in t.records] == [0, 1, 2]
    assert turns[0].records and turns[0].caught_up  # the turn that reached the end says so
    assert [t.records for t in turns[1:]] == [[], [], []] and all(t.caught_up for t in turns)


def test_following_a_topic_with_nothing_to_read_is_caught_up_at_once() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: []})
    first = next(read(reader, TOPIC, {0: 0}, {0: 0}, follow=True, wait=0))
    assert first.records == [] and first.caught_up


def test_watermarks_of_every_partition_and_none_for_a_topic_never_written() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(3), 1: []}, low=7)
    assert watermarks(reader, TOPIC) == {0: (7, 10), 1: (7, 7)}
    assert watermarks(reader, "no-such-topic") == {}


def test_a_batch_folds_to_each_keys_last_value_and_a_tombstone_to_none() -> None:
    writes = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None)]
    records = [Msg(KafkaMessage(k, v, ()), n) for n, (k, v) in enumerate(writes)]
    assert last_per_key(records) == {b"a": b"2", b"b": None}
