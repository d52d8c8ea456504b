"""Bulk reading of a changelog from applied offsets to its end (whale.changelog), with a fake reader."""

from __future__ import annotations

import threading
from typing import Any

from whale.binding import KafkaMessage
from whale.changelog import last_per_key, read_to_end, watermarks

from .fakes import ChangelogReader, Msg

TOPIC = "app-table-changelog"


def _log(n: int, prefix: bytes = b"k") -> list[tuple[bytes, bytes | None]]:
    return [(prefix + str(i).encode(), str(i).encode()) for i in range(n)]


def test_reads_each_partition_from_its_start_to_its_end_in_batches_with_their_next_offsets() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(5), 1: _log(3)})
    batches = list(read_to_end(reader, TOPIC, {0: 2, 1: 0}, {0: 5, 1: 3}, batch=2))
    offsets = sorted((m.partition(), m.offset()) for records, _ in batches for m in records)
    assert offsets == [(0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2)]
    assert all(len(records) <= 2 for records, _ in batches)
    last: dict[int, int] = {}
    for _, nxt in batches:
        last.update(nxt)
    assert last == {0: 5, 1: 3}


def test_a_partition_already_at_its_end_is_not_read() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(4), 1: _log(2)})
    batches = list(read_to_end(reader, TOPIC, {0: 4, 1: 0}, {0: 4, 1: 2}))
    assert reader.assigned == [(1, 0)]
    assert [m.partition() for records, _ in batches for m in records] == [1, 1]
    assert list(read_to_end(reader, TOPIC, {0: 4}, {0: 4})) == []


def test_an_empty_partition_that_ends_before_its_high_watermark_still_finishes() -> None:
    """Compaction may leave no record up to the end: the partition-EOF event ends the reading."""
    reader: Any = ChangelogReader(TOPIC, {0: _log(2)})
    batches = list(read_to_end(reader, TOPIC, {0: 0}, {0: 5}))
    assert [m.offset() for records, _ in batches for m in records] == [0, 1]


def test_reading_stops_between_batches_once_asked_to() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(10)})
    stop = threading.Event()
    seen = 0
    for records, _ in read_to_end(reader, TOPIC, {0: 0}, {0: 10}, batch=3, stop=stop):
        seen += len(records)
        stop.set()
    assert seen == 3


def test_watermarks_of_every_partition_and_none_for_a_topic_never_written() -> None:
    reader: Any = ChangelogReader(TOPIC, {0: _log(3), 1: []}, low=7)
    assert watermarks(reader, TOPIC) == {0: (7, 10), 1: (7, 7)}
    assert watermarks(reader, "no-such-topic") == {}


def test_a_batch_folds_to_each_keys_last_value_and_a_tombstone_to_none() -> None:
    writes = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None)]
    records = [Msg(KafkaMessage(k, v, ()), n) for n, (k, v) in enumerate(writes)]
    assert last_per_key(records) == {b"a": b"2", b"b": None}
