"""The throttle table's RocksDB partitions rebuilt from the changelog before Faust's recovery: real
Faust stores (rocksdict) in a temporary directory, a fake changelog reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import faust
from faust.types import TP
from rocksdict import Rdict
from whale_rule_engine.table_restore import restore_store

from tests.whale.fakes import ChangelogReader

TOPIC = "t-app-throttle-buckets-changelog"


def _store(datadir: Path, partitions: int = 2, options: dict[str, Any] | None = None) -> Any:
    app = faust.App("t-app", datadir=str(datadir), store="rocksdb://", web_enabled=False)
    table = app.Table("throttle-buckets", partitions=partitions, options=options)
    assert table.changelog_topic.get_topic_name() == TOPIC
    return table.data


def _bucket(n: int) -> tuple[bytes, bytes]:
    return json.dumps(f"rule|host-{n}").encode(), json.dumps({"tokens": n, "p": 0}).encode()


def _contents(store: Any, partition: int) -> dict[bytes, bytes]:
    db = Rdict(str(store.partition_path(partition)), store.rocksdb_options.as_options())
    try:
        items: list[tuple[Any, Any]] = list(db.items())
        return {bytes(k): bytes(v) for k, v in items}
    finally:
        db.close()


def test_a_lost_store_is_rebuilt_with_each_keys_last_value_and_faust_reads_on_after_its_offset(
    tmp_path: Path,
) -> None:
    gone = _bucket(2)[0]
    logs: dict[int, list[tuple[bytes, bytes | None]]] = {
        0: [_bucket(1), _bucket(2), (_bucket(1)[0], b'{"tokens": 9}'), (gone, None)],
        1: [_bucket(3)],
    }
    store = _store(tmp_path)
    reader: Any = ChangelogReader(TOPIC, logs)
    assert restore_store(store, reader, TOPIC) == {0: 4, 1: 1}
    offset = store.offset_key
    assert _contents(store, 0) == {_bucket(1)[0]: b'{"tokens": 9}', offset: b"3"}
    assert _contents(store, 1) == {_bucket(3)[0]: _bucket(3)[1], offset: b"0"}
    # Faust's recovery starts from the offset of the last record applied (and skips it)
    assert store.persisted_offset(TP(TOPIC, 0)) == 3
    assert store.persisted_offset(TP(TOPIC, 1)) == 0


def test_a_store_restored_before_reads_only_the_records_written_after_its_offset(tmp_path: Path) -> None:
    logs: dict[int, list[tuple[bytes, bytes | None]]] = {0: [_bucket(1), _bucket(2)], 1: []}
    restore_store(_store(tmp_path), ChangelogReader(TOPIC, logs), TOPIC)  # type: ignore[arg-type]
    logs[0].append(_bucket(5))
    store = _store(tmp_path)
    reader: Any = ChangelogReader(TOPIC, logs)
    assert restore_store(store, reader, TOPIC) == {0: 1, 1: 0}
    assert reader.assigned == [(0, 2)]
    assert set(_contents(store, 0)) == {_bucket(1)[0], _bucket(2)[0], _bucket(5)[0], store.offset_key}
    assert restore_store(store, ChangelogReader(TOPIC, logs), TOPIC) == {0: 0, 1: 0}  # type: ignore[arg-type]


def test_a_store_whose_offset_is_past_the_changelogs_end_is_wiped_and_rebuilt(tmp_path: Path) -> None:
    """The changelog was recreated (or belongs to another cluster): Faust would stop with a
    consistency error; the store is rebuilt from the topic as it is now."""
    old: dict[int, list[tuple[bytes, bytes | None]]] = {0: [_bucket(n) for n in range(5)]}
    restore_store(_store(tmp_path, 1), ChangelogReader(TOPIC, old), TOPIC)  # type: ignore[arg-type]
    store = _store(tmp_path, 1)
    new: Any = ChangelogReader(TOPIC, {0: [_bucket(7)]})
    assert restore_store(store, new, TOPIC) == {0: 1}
    assert _contents(store, 0) == {_bucket(7)[0]: _bucket(7)[1], store.offset_key: b"0"}


def test_a_changelog_not_created_yet_leaves_the_store_alone(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert restore_store(store, ChangelogReader("other-topic", {0: []}), TOPIC) == {}  # type: ignore[arg-type]
    assert not store.partition_path(0).exists()


def test_a_restore_asked_to_stop_reads_no_further_and_the_next_one_reads_the_rest(tmp_path: Path) -> None:
    logs: dict[int, list[tuple[bytes, bytes | None]]] = {0: [_bucket(n) for n in range(3)], 1: [_bucket(9)]}
    stop = threading.Event()
    stop.set()
    store = _store(tmp_path)
    assert restore_store(store, ChangelogReader(TOPIC, logs), TOPIC, stop) == {}  # type: ignore[arg-type]
    assert restore_store(store, ChangelogReader(TOPIC, logs), TOPIC) == {0: 3, 1: 1}  # type: ignore[arg-type]


CRASH_RECORDS = 30_000
# a memtable holds less than a batch, and RocksDB stalls writes while Faust's three memtables are
# all full: most of the batches before the kill are in files, whatever the machine's speed
SMALL_MEMTABLES = {"write_buffer_size": 64 << 10}


class _CrashingReader(ChangelogReader):
    """Hands out 2,000 records per batch and kills the process (no flush, no close) at the tenth."""

    def __init__(self, logs: dict[int, list[tuple[bytes, bytes | None]]]) -> None:
        super().__init__(TOPIC, logs)
        self.calls = 0

    def consume(self, num_messages: int, timeout: float) -> Any:
        self.calls += 1
        if self.calls == 10:
            time.sleep(0.5)  # the background flush of the last full memtables may finish
            os._exit(9)
        return super().consume(min(num_messages, 2_000), timeout)


def crash_mid_restore(datadir: str) -> None:
    """Run in a child process: a restore killed halfway."""
    logs: dict[int, list[tuple[bytes, bytes | None]]] = {0: [_bucket(n) for n in range(CRASH_RECORDS)]}
    restore_store(_store(Path(datadir), 1, SMALL_MEMTABLES), _CrashingReader(logs), TOPIC)  # type: ignore[arg-type]


def test_a_restore_killed_halfway_leaves_a_consistent_prefix_and_the_next_start_reads_the_rest(
    tmp_path: Path,
) -> None:
    """Written without the write-ahead log: what survives a kill is every record up to the offset
    stored with them, nothing after it; the next restore reads on from there."""
    code = (
        "import sys; from tests.rule_engine.test_table_restore import crash_mid_restore as c; c(sys.argv[1])"
    )
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, check=False)
    assert child.returncode == 9
    store = _store(tmp_path, 1, SMALL_MEMTABLES)
    kept = _contents(store, 0)
    offset = int(kept.pop(store.offset_key))
    assert 0 < offset < CRASH_RECORDS - 1, offset
    assert kept == dict(_bucket(n) for n in range(offset + 1))
    logs: dict[int, list[tuple[bytes, bytes | None]]] = {0: [_bucket(n) for n in range(CRASH_RECORDS)]}
    reader: Any = ChangelogReader(TOPIC, logs)
    assert restore_store(store, reader, TOPIC) == {0: CRASH_RECORDS - offset - 1}
    assert reader.assigned == [(0, offset + 1)]
    assert len(_contents(store, 0)) == CRASH_RECORDS + 1
