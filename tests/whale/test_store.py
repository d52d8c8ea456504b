"""The local store: atomic data + applied offsets, resuming after a restart, rebuilt when missing,
corrupt, foreign, stale or ahead of its topic."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from whale.store import L0_BACKLOG, LocalStore, StoreSettings, contiguous

IDENTITY = {"stage": "test", "topic": "t", "cluster": "c1"}


def settings(tmp_path: Path, stale_after: float = 3600.0) -> StoreSettings:
    return StoreSettings(dir=tmp_path, cache_mb=1, write_buffer_mb=1, stale_after=stale_after)


def test_a_restart_resumes_from_the_applied_offsets(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    assert store.rebuilt and store.reason == "missing" and store.offsets() == {}
    batch = store.batch()
    batch.put(b"a", b"1")
    batch.put(b"b", b"2")
    store.commit(batch, {0: 10, 2: 3})
    store.close()
    again = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    assert not again.rebuilt
    assert again.offsets() == {0: 10, 2: 3} and again.offset(1) == 0
    assert again.get(b"a") == b"1" and list(again.items()) == [(b"a", b"1"), (b"b", b"2")]


def test_staged_writes_are_visible_to_the_batch_only_until_committed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.put(b"x", b"old")
    batch = store.batch()
    batch.put(b"y", b"new")
    batch.delete(b"x")
    assert batch.get(b"y") == b"new" and batch.get(b"x") is None
    assert store.get(b"y") is None and store.get(b"x") == b"old"  # a dropped batch leaves no trace
    store.commit(batch, {0: 1})
    assert store.get(b"y") == b"new" and store.get(b"x") is None


def test_items_reads_one_prefix_or_range_and_never_the_metadata(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    for key in (b"k1", b"k2", b"t1", b"t5", b"t9"):
        store.put(key, b"")
    store.commit(None, {0: 5})
    assert [k for k, _ in store.items(b"k")] == [b"k1", b"k2"]
    assert [k for k, _ in store.items(b"t", end=b"t6")] == [b"t1", b"t5"]
    assert len(list(store.items())) == 5


def test_a_foreign_store_is_rebuilt(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.commit(store.batch(), {0: 7})
    store.put(b"a", b"1")
    store.close()
    other = LocalStore(tmp_path / "s", {**IDENTITY, "cluster": "c2"}, settings(tmp_path))
    assert other.rebuilt and other.reason.startswith("foreign")
    assert other.offsets() == {} and other.get(b"a") is None


def test_a_corrupt_store_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "s"
    first = LocalStore(path, IDENTITY, settings(tmp_path))
    first.close()
    for file in first.path.iterdir():
        if file.name.startswith(("CURRENT", "MANIFEST")):
            file.write_bytes(b"garbage")
    store = LocalStore(path, IDENTITY, settings(tmp_path))
    assert store.rebuilt and store.reason.startswith("unreadable")
    store.put(b"a", b"1")
    assert store.get(b"a") == b"1"


def test_a_store_unused_longer_than_stale_after_is_rebuilt(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path, stale_after=0.05))
    store.commit(store.batch(), {0: 3})
    store.close()
    time.sleep(0.1)
    again = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path, stale_after=0.05))
    assert again.rebuilt and again.reason == "stale" and again.offsets() == {}


def test_offsets_outside_the_topic_reset_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.put(b"a", b"1")
    store.commit(None, {0: 50, 1: 4})
    assert not store.check_offsets({0: (0, 60), 1: (0, 4)})
    assert not store.check_offsets({1: (0, 4)})  # partition 0 is not read now: left alone
    assert store.check_offsets({0: (0, 20), 1: (0, 4)})  # the topic was recreated: offset 50 is gone
    assert store.offsets() == {} and store.get(b"a") is None


def test_own_writes_advance_the_applied_offset_only_without_a_gap() -> None:
    assert contiguous(10, [10, 11, 12]) == 13
    assert contiguous(10, [12, 11, 10]) == 13
    assert contiguous(10, [11, 12]) == 10  # offset 10 was written by someone else: read it later
    assert contiguous(10, []) == 10


def test_a_second_opener_gets_its_own_slot_and_a_closed_slot_is_reused(tmp_path: Path) -> None:
    first = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    first.commit(None, {0: 4})
    second = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))  # e.g. two workers, one disk
    assert second.path != first.path and second.offsets() == {}
    first.close()
    again = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    assert again.path == first.path and again.offsets() == {0: 4}


_CRASH = """
import os, sys
from pathlib import Path
from whale.store import LocalStore, StoreSettings
root = Path(sys.argv[1])
store = LocalStore(root / "s", {"stage": "test"}, StoreSettings(dir=root, cache_mb=1, write_buffer_mb=1))
store.write({b"a": b"1"}, {0: 5})
store.write({b"b": b"2"}, {0: 9}, wal=False)
if sys.argv[2] == "flush":
    store.flush()
os._exit(0)  # like kill -9: no close, nothing flushed on the way out
"""


def _crash_after_unlogged_write(tmp_path: Path, flush: bool) -> LocalStore:
    args = [sys.executable, "-c", _CRASH, str(tmp_path), "flush" if flush else "no"]
    subprocess.run(args, check=True, timeout=60)
    return LocalStore(tmp_path / "s", {"stage": "test"}, settings(tmp_path))


def test_writes_without_the_log_are_lost_with_their_offsets_when_the_process_dies(tmp_path: Path) -> None:
    """A rebuild writes without RocksDB's write-ahead log: after a crash the store still holds data
    and applied offsets that match (the unlogged batch and its offset are gone together)."""
    store = _crash_after_unlogged_write(tmp_path, flush=False)
    assert not store.rebuilt
    assert store.get(b"a") == b"1" and store.offset(0) == 5
    assert store.get(b"b") is None  # read again from offset 5


def test_writes_without_the_log_survive_a_crash_once_flushed(tmp_path: Path) -> None:
    store = _crash_after_unlogged_write(tmp_path, flush=True)
    assert store.get(b"b") == b"2" and store.offset(0) == 9


def test_write_applies_puts_and_deletes_with_the_applied_offsets(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.write({b"a": b"1", b"b": b"2"}, {1: 4})
    store.write({b"a": None, b"c": b"3"}, {1: 2})  # an applied offset never moves back
    assert [store.get(k) for k in (b"a", b"b", b"c")] == [None, b"2", b"3"]
    assert store.offset(1) == 4


def test_a_deferred_compaction_keeps_level_0_until_compact_then_compacts_once(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.defer_compaction()
    before = int(store._db.property_int_value("rocksdb.num-files-at-level0") or 0)  # the identity
    for n in range(6):  # six flushed files: more than level 0's compaction trigger (4)
        store.write({b"k%d" % n: b"v" * 1000}, {0: n + 1}, wal=False)
        store.flush()
    assert store._db.property_int_value("rocksdb.num-files-at-level0") == before + 6
    store.compact()
    store.wait_compacted()
    assert store._db.property_int_value("rocksdb.num-files-at-level0") == 0
    assert store.get(b"k5") == b"v" * 1000 and store.offset(0) == 6
    store.compact()  # a no-op once compacted


def _level0(store: LocalStore, files: int, start: int = 0) -> None:
    """``files`` flushed level-0 files of 100 keys each (while compaction is deferred)."""
    for n in range(start, start + files):
        store.write({b"k%d-%d" % (n, i): b"v" * 100 for i in range(100)}, {0: n + 1}, wal=False)
        store.flush()


def _compacting(tmp_path: Path, files: int) -> LocalStore:
    """A bulk-loaded store of ``files`` level-0 files compacting in the background, written to
    meanwhile (``live``, with the log, at offset ``files``)."""
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.defer_compaction()
    _level0(store, files)
    store.compact()
    store.write({b"live": b"1"}, {0: files + 1})
    return store


def test_a_background_compaction_serves_meanwhile_then_lets_rocksdb_compact_again(tmp_path: Path) -> None:
    store = _compacting(tmp_path, 6)
    assert store.get(b"live") == b"1" and store.get(b"k3-5") == b"v" * 100
    assert store.wait_compacted(timeout=60)
    assert store.level0_files() == 0 and store.get(b"k5-99") == b"v" * 100 and store.offset(0) == 7
    _level0(store, 6, start=6)  # automatic compaction is back: level 0 does not keep piling up
    deadline = time.monotonic() + 60
    while store.level0_files() >= 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.level0_files() < 6
    store.close()


def test_closing_during_a_background_compaction_stops_it_and_keeps_every_key(tmp_path: Path) -> None:
    _compacting(tmp_path, 30).close()  # the live write has the log: it survives however the close ends
    again = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    assert not again.rebuilt and again.offset(0) == 31
    assert again.get(b"live") == b"1" and again.get(b"k29-99") == b"v" * 100
    assert again.wait_compacted(timeout=60)
    assert again.level0_files() < L0_BACKLOG  # compacted then (the live write flushed since), or resumed now
    again.close()


def test_an_interrupted_bulk_loads_level_0_backlog_is_compacted_in_the_background(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    store.defer_compaction()
    _level0(store, L0_BACKLOG + 2)
    store.close()  # stopped before its one compaction (a crash or a stop right after catching up)
    again = LocalStore(tmp_path / "s", IDENTITY, settings(tmp_path))
    assert again._compacting is not None  # resumed: automatic compaction would stall every write
    assert again.get(b"k0-0") == b"v" * 100
    assert again.wait_compacted(timeout=60) and again.level0_files() == 0
    again.close()


def test_a_deferred_compaction_does_not_pin_the_level_0_blocks_in_memory(tmp_path: Path) -> None:
    def pinned(store: LocalStore, files: int) -> list[int]:
        """The cache's pinned bytes after each of ``files`` flushed level-0 files is read."""
        found = []
        for n in range(files):
            store.write({b"k%d-%d" % (n, i): b"v" * 100 for i in range(1000)}, {0: n + 1}, wal=False)
            store.flush()
            store.get(b"k%d-1" % n)  # opens the file's index and filter
            found.append(int(store._db.property_int_value("rocksdb.block-cache-pinned-usage") or 0))
        return found

    usual = pinned(LocalStore(tmp_path / "usual", IDENTITY, settings(tmp_path)), 3)
    assert usual[0] < usual[1] < usual[2]  # outside a bulk load level 0 stays small: pinned there
    store = LocalStore(tmp_path / "bulk", IDENTITY, settings(tmp_path))
    store.defer_compaction()
    bulk = pinned(store, 3)
    per_file = (usual[2] - usual[0]) / 2  # a level-0 file's index and filter, pinned outside a bulk load
    assert bulk[0] < usual[0] and bulk[2] - bulk[0] < per_file / 2  # bulk: only their small top level
    store.compact()
    store.wait_compacted()
    assert store.get(b"k2-1") == b"v" * 100 and store.offset(0) == 3


def test_a_store_reopened_uses_the_configured_options_not_those_it_was_created_with(tmp_path: Path) -> None:
    LocalStore(tmp_path / "s", IDENTITY, StoreSettings(dir=tmp_path, cache_mb=1)).close()
    store = LocalStore(tmp_path / "s", IDENTITY, StoreSettings(dir=tmp_path, cache_mb=2))
    assert not store.rebuilt
    assert store._db.property_int_value("rocksdb.block-cache-capacity") == 2 << 20
