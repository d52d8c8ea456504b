"""State of the stateful stages: memory (RSS) and restart time with many keys, before (Python dicts,
what the stages kept until the local stores) and after (RocksDB local stores, :mod:`whale.store`),
and the rate at which a lost store is rebuilt.

Each measurement runs in a fresh subprocess (RSS is the process's own): it loads ``KEYS`` keys of the
stage's shape, reports the RSS growth and CPU seconds, then (RocksDB) closes the store, opens it again
(a restart with an intact store) and reads 100,000 random keys. The dedupe rebuild reads a real
changelog topic on Kafka through the stage's restore path (``DedupeWindow.restore``); the other
stages' rebuild rate is their store's apply path (no Kafka read). The rule engine's throttle table
is measured as Faust's ``rocksdb://`` store keeps it: one rocksdict database with Faust's options as
the engine sets them (``whale_rule_engine.app``).

Run alone with ``python -m benchmarks.bench_state`` (``WHALE_BENCH_STATE_KEYS`` to change the count).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TITLE = "State: RSS and restart time of the stateful stages, dicts before and RocksDB after"
KEYS = int(os.environ.get("WHALE_BENCH_STATE_KEYS", "1000000"))
READS = 100_000
CHUNK = 10_000
STAGES = ("dedupe", "todo", "executor", "throttle")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------- shapes
def dedupe_key(n: int) -> str:
    return f"urn:whale:bench:source-{n % 50}\n{uuid.UUID(int=n)}"


def todo_item(n: int) -> dict[str, Any]:
    ref = {"source": "urn:bench", "id": str(uuid.UUID(int=n)), "time": "2026-11-30T10:00:00Z"}
    return {
        "id": str(uuid.UUID(int=n + 1)), "key": f"printer.jammed|floor-{n}", "status": "open",
        "title": f"printer.jammed on floor-{n}", "type": "printer.jammed", "subject": f"floor-{n}",
        "origin": "unhandled", "count": 1, "details": {"tray": 2, "code": "E42"}, "first_event": ref,
        "last_event": ref, "correlationid": ref["id"], "created_at": ref["time"],
        "updated_at": ref["time"], "claimed_by": None, "resolved_by": None, "resolution": None,
        "comments": [], "last_command": None, "seen": [ref["id"]],
    }  # fmt: skip


def run_record(n: int) -> dict[str, Any]:
    return {
        "kind": "action", "status": "finished", "seq": 2, "pool": "default", "recorded_at": 1.8e9 + n,
        "action": "core.http", "request_id": str(uuid.UUID(int=n)), "attempts": 1,
        "output": {"status": 200, "body": {"ok": True}}, "error": None,
    }  # fmt: skip


def bucket(n: int) -> dict[str, Any]:
    return {"tokens": 4.0, "at": 1.8e9 + n, "suppressed": 0, "recent": [uuid.UUID(int=n).hex] * 4}


# ---------------------------------------------------------------------- child measurements
def child_dict(stage: str, keys: int) -> dict[str, Any]:
    base, cpu0, t0 = rss_mib(), cpu_s(), time.perf_counter()
    table: dict[Any, Any] = {}
    if stage == "dedupe":
        table = {p: {} for p in range(3)}
        for n in range(keys):
            table[n % 3][dedupe_key(n)] = 1_800_000_000_000 + n
    elif stage == "todo":
        open_keys = {}
        for n in range(keys):
            item = todo_item(n)
            table[item["id"]] = item
            open_keys[item["key"]] = item["id"]
        table = {"items": table, "open": open_keys}
    elif stage == "executor":
        table = {f"default/req-{n}": run_record(n) for n in range(keys)}
    else:
        table = {f"disk-full|host-{n}": bucket(n) for n in range(keys)}
    return {"rss": rss_mib() - base, "load_s": time.perf_counter() - t0, "cpu_s": cpu_s() - cpu0}


def _store(stage: str, root: Path) -> Any:
    from whale.store import LocalStore, StoreSettings

    return LocalStore(root / stage, {"stage": stage}, StoreSettings(dir=root))


def _load_store(stage: str, root: Path, keys: int) -> tuple[Any, Any]:
    """Fill the stage's store through the stage's own write path; returns (store, reader)."""
    if stage == "dedupe":
        from whale_dedupe.window import DedupeWindow

        store = _store(stage, root)
        window = DedupeWindow(store, 24 * 3600 * 1000)
        for start in range(0, keys, CHUNK):
            batch = store.batch()
            for n in range(start, min(keys, start + CHUNK)):
                window.remember(batch, n % 3, dedupe_key(n), 1_800_000_000_000 + n)
            store.commit(batch, {0: start + CHUNK})
        return store, lambda n: window.seen(store.batch(), n % 3, dedupe_key(n))
    if stage == "todo":
        from whale_todo.store import ITEM, put_item

        store = _store(stage, root)
        for start in range(0, keys, CHUNK):
            batch = store.batch()
            for n in range(start, min(keys, start + CHUNK)):
                put_item(batch, todo_item(n), ("open", "claimed"))
            store.commit(batch, {0: start + CHUNK})
        return store, lambda n: store.get(ITEM + str(uuid.UUID(int=n + 1)).encode())
    if stage == "executor":
        from whale_executor.state import StateStore

        from whale.settings import WhaleSettings

        store = _store(stage, root)
        state = StateStore(WhaleSettings(), None, pool="default", source="/bench", local=store)  # type: ignore[arg-type]
        for start in range(0, keys, CHUNK):
            state._begin()  # the follower's path: one WriteBatch per consumed batch
            for n in range(start, min(keys, start + CHUNK)):
                state._apply(f"default/req-{n}", run_record(n))
            state._applied({0: start + CHUNK})
        return store, lambda n: state.get(f"default/req-{n}")
    from rocksdict import WriteBatch

    db = _throttle_db(root)
    for start in range(0, keys, CHUNK):
        writes = WriteBatch(raw_mode=True)
        for n in range(start, min(keys, start + CHUNK)):
            writes.put(f"disk-full|host-{n}".encode(), json.dumps(bucket(n)).encode())
        db.write(writes)

    class Faustish:
        def close(self) -> None:
            db.close()

    return Faustish(), lambda n: db.get(f"disk-full|host-{n}".encode())


def _throttle_db(root: Path) -> Any:
    """A throttle-table partition as Faust's rocksdb:// store opens it with the engine's options."""
    from faust.stores.rocksdb import RocksDBOptions
    from rocksdict import Rdict
    from whale_rule_engine.settings import Settings

    settings = Settings()
    mib = 1024 * 1024
    options = RocksDBOptions(
        block_cache_size=settings.state.cache_mb * mib, block_cache_compressed_size=mib,
        write_buffer_size=settings.state.write_buffer_mb * mib, max_write_buffer_number=2,
        use_rocksdict=True,
    )  # fmt: skip
    return Rdict(str(root / "throttle.db"), options.as_options())


def child_rocksdb(stage: str, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="whale-bench-state-") as tmp:
        root = Path(tmp)
        _load_store(stage, root / "warm-up", 10)[0].close()  # imports and RocksDB's own set-up
        base, cpu0, t0 = rss_mib(), cpu_s(), time.perf_counter()
        store, _ = _load_store(stage, root, keys)
        load_s, load_cpu, loaded_rss = time.perf_counter() - t0, cpu_s() - cpu0, rss_mib() - base
        store.close()
        t1 = time.perf_counter()
        reader: Callable[[int], object]
        if stage == "throttle":
            db = _throttle_db(root)
            reopen_s = time.perf_counter() - t1
            get = db.get
            reader = lambda n: get(f"disk-full|host-{n}".encode())  # noqa: E731
        else:
            again = _store(stage, root)
            assert not again.rebuilt, again.reason
            again.offsets()
            reopen_s = time.perf_counter() - t1
            reader = _reader(stage, again)
        for n in random.sample(range(keys), min(READS, keys)):
            assert reader(n) is not None
        disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        return {
            "rss": loaded_rss, "rss_after_reads": rss_mib() - base, "load_s": load_s,
            "cpu_s": load_cpu, "reopen_s": reopen_s, "disk_mib": disk / 1024 / 1024,
        }  # fmt: skip


def _reader(stage: str, store: Any) -> Any:
    if stage == "dedupe":
        from whale_dedupe.window import DedupeWindow

        window = DedupeWindow(store, 24 * 3600 * 1000)
        return lambda n: window.seen(store.batch(), n % 3, dedupe_key(n))
    if stage == "todo":
        from whale_todo.store import ITEM

        return lambda n: store.get(ITEM + str(uuid.UUID(int=n + 1)).encode())
    return lambda n: store.get(b"d" + f"default/req-{n}".encode())


def child_rebuild(keys: int) -> dict[str, Any]:
    """Write ``keys`` dedupe records to a fresh changelog topic, then rebuild a new store from it."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
    from whale_dedupe.window import DedupeWindow

    from whale.settings import WhaleSettings

    settings = WhaleSettings()
    topic = f"bench.state.{uuid.uuid4().hex[:8]}.changelog"
    admin = AdminClient(settings.kafka_config())
    admin.create_topics([NewTopic(topic, 3, -1, config={"cleanup.policy": "compact,delete"})])[topic].result(
        30
    )
    producer = Producer({**settings.kafka_config(), "linger.ms": 20, "batch.num.messages": 10_000})
    now = int(time.time() * 1000)
    for n in range(keys):
        while True:
            try:
                producer.produce(topic, key=dedupe_key(n).encode(), value=str(now).encode(), partition=n % 3)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)
    try:
        with tempfile.TemporaryDirectory(prefix="whale-bench-state-") as tmp:
            root = Path(tmp)
            store = _store("dedupe", root)
            window = DedupeWindow(store, 24 * 3600 * 1000)
            base, cpu0, t0 = rss_mib(), cpu_s(), time.perf_counter()
            read = window.restore(settings.kafka_config(), topic, [0, 1, 2])
            rebuild_s, rebuild_cpu, rss = time.perf_counter() - t0, cpu_s() - cpu0, rss_mib() - base
            store.close()
            again = _store("dedupe", root)
            t1, cpu1 = time.perf_counter(), cpu_s()
            tail = DedupeWindow(again, 24 * 3600 * 1000).restore(settings.kafka_config(), topic, [0, 1, 2])
            restart_s, restart_cpu = time.perf_counter() - t1, cpu_s() - cpu1
            again.close()
    finally:
        admin.delete_topics([topic])
    return {
        "read": read, "rebuild_s": rebuild_s, "rebuild_cpu": rebuild_cpu, "rss": rss,
        "restart_s": restart_s, "restart_cpu": restart_cpu, "restart_read": tail,
    }  # fmt: skip


# ---------------------------------------------------------------------- parent
def _child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_state", "--child", *args],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"bench_state child {args} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for stage in STAGES:
        before = _child("dict", stage, str(KEYS))
        after = _child("rocksdb", stage, str(KEYS))
        rows.append(
            {
                "stage": stage, "keys": KEYS,
                "dict RSS MiB": round(before["rss"]), "dict load s": before["load_s"],
                "RocksDB RSS MiB": round(after["rss"]), "RSS after 100k reads": round(after["rss_after_reads"]),
                "disk MiB": round(after["disk_mib"]), "store apply keys/s": KEYS / after["load_s"],
                "apply CPU s": after["cpu_s"], "restart (reopen) s": after["reopen_s"],
            }
        )  # fmt: skip
    rebuild = _child("rebuild", "dedupe", str(KEYS))
    rows.append(
        {
            "stage": "dedupe from Kafka", "keys": rebuild["read"],
            "dict RSS MiB": None, "dict load s": None,
            "RocksDB RSS MiB": round(rebuild["rss"]), "RSS after 100k reads": None, "disk MiB": None,
            "store apply keys/s": rebuild["read"] / rebuild["rebuild_s"], "apply CPU s": rebuild["rebuild_cpu"],
            "restart (reopen) s": rebuild["restart_s"],
        }
    )  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        mode, stage, keys = argv[1], argv[2], int(argv[3])
        if mode == "dict":
            result = child_dict(stage, keys)
        elif mode == "rocksdb":
            result = child_rocksdb(stage, keys)
        else:
            result = child_rebuild(keys)
        print(json.dumps(result))
        return 0
    from benchmarks import format_table

    print(format_table(TITLE, run()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
