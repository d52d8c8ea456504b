"""State of the stateful stages: memory (RSS) and restart time with many keys, before (Python dicts,
what the stages kept until the local stores) and after (RocksDB local stores, :mod:`whale.store`),
and the rate at which a lost store is rebuilt from a real topic on Kafka.

Each measurement runs in a fresh subprocess (RSS is the process's own, CPU seconds are all its
threads' from ``/proc/self/stat``):

- ``dict fill``: ``KEYS`` keys of the stage's shape in Python dicts (what the stages kept before);
- ``store apply``: the same keys through the stage's own store write path in batches of 10,000,
  then the store closed and opened again (``restart s``: a restart with an intact store) and
  100,000 random keys read (``RSS peak / after reads``: RSS growth after them);
- ``rebuild from Kafka``: ``KEYS`` changelog records of the stage's shape written to a new
  3-partition topic by a separate process (batched producer, lz4), then a new store rebuilt from it
  through the stage's own restore path (dedupe: ``DedupeWindow.restore``; executor: the
  ``StateStore`` follower; to-do: the ``TodoLoader``), then restarted on the intact store
  (``restart s``: open it and find nothing new to read). ``RSS peak``: the highest RSS growth.
  ``keys/s``: records read per second until the follower is caught up (the stage serves); the
  to-do book's rebuilt store then finishes its one compaction in the background (``compacted s``:
  seconds from the start until it is done; ``CPU s`` includes it).

The rule engine's throttle table is measured as Faust's ``rocksdb://`` store keeps it: one rocksdict
database with Faust's options as the engine sets them (``whale_rule_engine.app``). Its rebuild is the
worker's start-up (``worker restore``, :func:`throttle_restore`: ``whale_rule_engine.table_restore``,
then Faust's recovery of what is left): ``KEYS`` buckets
written to a throw-away app id's table changelog, then ``whale run rule-engine`` started with that
app id and an empty ``WHALE_STATE_DIR`` (seconds to ``/readyz`` 200, RSS and CPU of the whole worker
process from ``/proc``), then started again on the intact store (``restart s``).

Run alone with ``python -m benchmarks.bench_state`` (``WHALE_BENCH_STATE_KEYS`` to change the count).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
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
REBUILT = ("dedupe", "executor", "todo")  # rebuilt from a real topic on Kafka by the stage's own path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (librdkafka's too), from /proc."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def _produce(topic: str, keys: int, record: Callable[[int], tuple[bytes, bytes, Any]]) -> float:
    """Write ``keys`` records to a new 3-partition ``topic`` with a batched producer (large lz4
    batches, no per-record wait); returns records/s."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from whale.settings import WhaleSettings

    config = WhaleSettings().kafka_config()
    admin = AdminClient(config)
    admin.create_topics([NewTopic(topic, 3, -1, config={"cleanup.policy": "compact,delete"})])[topic].result(
        30
    )
    producer = Producer(
        {
            **config, "linger.ms": 50, "batch.size": 1_000_000, "batch.num.messages": 100_000,
            "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000,
        }
    )  # fmt: skip
    t0 = time.perf_counter()
    for n in range(keys):
        key, value, headers = record(n)
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers, partition=n % 3)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(600):
        raise RuntimeError(f"could not write {topic}")
    return keys / (time.perf_counter() - t0)


def _drop_topic(topic: str) -> None:
    from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

    from whale.settings import WhaleSettings

    admin = AdminClient(WhaleSettings().kafka_config())  # held until the answer (else _DESTROY)
    admin.delete_topics([topic])[topic].result(60)


def _records(stage: str) -> Callable[[int], tuple[bytes, bytes, Any]]:
    """The changelog record of key ``n`` as the stage writes it (key, value, headers)."""
    if stage == "dedupe":
        now = str(int(time.time() * 1000)).encode()
        return lambda n: (dedupe_key(n).encode(), now, None)
    if stage == "executor":  # the key names the run: 1,000 record bodies are reused (faster to write)
        bodies = [json.dumps(run_record(n)).encode() for n in range(1000)]
        return lambda n: (f"default/req-{n}".encode(), bodies[n % 1000], None)
    from whale_todo.stage import record

    from whale.binding import to_binary

    headers = list(to_binary(record(todo_item(0))).headers)  # the same CloudEvent headers for all

    def todo(n: int) -> tuple[bytes, bytes, Any]:
        item = todo_item(n)
        return item["id"].encode(), json.dumps(item).encode(), headers

    return todo


def _rebuild_once(
    stage: str, topic: str, root: Path, marks: dict[str, float] | None = None
) -> tuple[int, Any]:
    """Open the stage's store under ``root`` and bring it up to date with ``topic`` through the
    stage's own restore path; returns (records read, the store, closed). ``marks["serving"]``: when
    the follower reported caught up (the stage would serve; a rebuilt to-do store then finishes its
    one compaction in the background: waited for before it is closed)."""
    import asyncio

    from whale_dedupe.window import DedupeWindow

    from whale.settings import WhaleSettings

    settings = WhaleSettings()
    if stage == "dedupe":
        store = _store("dedupe", root)
        read = DedupeWindow(store, 24 * 3600 * 1000).restore(settings.kafka_config(), topic, [0, 1, 2])
        if marks is not None:
            marks["serving"] = time.perf_counter()
        store.close()
        return read, store
    follower: Any
    state = __import__("whale.store", fromlist=["StoreSettings"]).StoreSettings(dir=root)
    if stage == "executor":
        from whale_executor.state import StateStore

        follower = StateStore(settings, None, pool="default", source="/bench", state=state)  # type: ignore[arg-type]
    else:
        from whale_todo.store import TodoLoader

        from whale.todos import OPEN_STATES

        follower = TodoLoader(settings, state, OPEN_STATES)
    follower._topic = topic  # the benchmark's own topic instead of the stage's
    asyncio.run(follower.start(timeout=7200))
    if marks is not None:
        marks["serving"] = time.perf_counter()
    local = follower.store if stage == "todo" else follower.local
    if stage == "todo":
        local.wait_compacted()
        if marks is not None:
            marks["compacted"] = time.perf_counter()
    asyncio.run(follower.stop())
    if stage == "todo":
        local.close()
    return follower.records_read, local


def child_produce(stage: str, keys: int) -> dict[str, Any]:
    """Write ``keys`` records of the stage's changelog to a fresh topic (its own process: the
    producer's buffers stay out of the rebuild's RSS)."""
    topic = f"bench.state.{stage}.{uuid.uuid4().hex[:8]}"
    return {"topic": topic, "produced_per_s": _produce(topic, keys, _records(stage))}


def _bucket_record(n: int) -> tuple[bytes, bytes, Any]:
    """A throttle-table changelog record as Faust writes it (json key and value, the engine's state
    with the partition field ``p``)."""
    return json.dumps(f"disk-full|host-{n}").encode(), json.dumps({**bucket(n), "p": n % 3}).encode(), None


def child_throttle_produce(keys: int) -> dict[str, Any]:
    """Write ``keys`` buckets to the changelog of a throw-away rule-engine app id."""
    app_id = f"bench-state-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-throttle-buckets-changelog"
    return {"app_id": app_id, "topic": topic, "produced_per_s": _produce(topic, keys, _bucket_record)}


def _engine_run(app_id: str, state_dir: Path, port: int, timeout: float) -> dict[str, Any]:
    """Start ``whale run rule-engine`` as ``app_id`` on ``state_dir``, wait for /readyz 200 (its
    table restored), read its RSS and CPU from /proc, stop it (SIGTERM)."""
    import signal
    import urllib.request

    env = {
        **os.environ, "WHALE_STATE_DIR": str(state_dir), "WHALE_RULE_ENGINE_PORT": str(port),
        "WHALE_RULES_DIR": str(state_dir / "rules"), "WHALE_RULE_ENGINE_STANDBY_REPLICAS": "0",
    }  # fmt: skip
    (state_dir / "rules").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from whale_rule_engine.app import main; sys.exit(main(['--app-id', sys.argv[1]]))", app_id],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ready_s: float | None = None
    peak = 0.0
    try:
        while time.perf_counter() - t0 < timeout and proc.poll() is None:
            peak = max(peak, _proc_mib(proc.pid, "VmHWM:"))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        ready_s = time.perf_counter() - t0
                        break
            except OSError:
                pass
            time.sleep(0.2)
        time.sleep(1.0)  # settle, then read the process
        rss, peak = _proc_mib(proc.pid, "VmRSS:"), max(peak, _proc_mib(proc.pid, "VmHWM:"))
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if ready_s is None:
        raise RuntimeError(f"the rule engine was not ready within {timeout}s")
    return {"ready_s": ready_s, "rss": rss, "peak_rss": peak, "cpu_s": cpu}


def _proc_mib(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def throttle_restore(keys: int, port: int = 18094) -> dict[str, Any]:
    """The rule engine's table restored by a worker's start-up (its table restore, then Faust's
    recovery): a worker started with an empty state directory against a changelog of ``keys``
    buckets (time to /readyz 200, RSS and CPU of the worker process), then started again on its
    intact store. Absolute RSS (the whole worker)."""
    produced = _child("throttle-produce", "throttle", str(keys))
    try:
        with tempfile.TemporaryDirectory(prefix="whale-bench-state-") as tmp:
            cold = _engine_run(produced["app_id"], Path(tmp), port, 3600)
            warm = _engine_run(produced["app_id"], Path(tmp), port, 600)
            disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    finally:
        app_id = produced["app_id"]
        for topic in (produced["topic"], f"{app_id}-throttle-repartition", f"{app_id}-__assignor-__leader"):
            with contextlib.suppress(Exception):  # the repartition topic may not exist
                _drop_topic(topic)
    return {
        "cold": cold,
        "warm": warm,
        "disk_mib": disk / 1024 / 1024,
        "produced_per_s": produced["produced_per_s"],
    }


def child_rebuild(stage: str, topic: str) -> dict[str, Any]:
    """Rebuild a new store from ``topic`` (a lost store), then restart on the intact store (nothing
    new to read); RSS growth and peak of this process, CPU seconds of all its threads."""
    with tempfile.TemporaryDirectory(prefix="whale-bench-state-") as tmp:
        root = Path(tmp)
        base, cpu0, t0 = rss_mib(), cpu_s(), time.perf_counter()
        marks: dict[str, float] = {}
        read, _ = _rebuild_once(stage, topic, root, marks)
        rebuild_s, rebuild_cpu = time.perf_counter() - t0, cpu_s() - cpu0
        serving_s = marks["serving"] - t0
        compacted_s = marks["compacted"] - t0 if "compacted" in marks else None
        rss, peak = rss_mib() - base, peak_mib() - base
        t1, cpu1 = time.perf_counter(), cpu_s()
        tail, _ = _rebuild_once(stage, topic, root)
        restart_s, restart_cpu = time.perf_counter() - t1, cpu_s() - cpu1
        disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return {
        "read": read, "serving_s": serving_s, "compacted_s": compacted_s, "rebuild_s": rebuild_s, "rebuild_cpu": rebuild_cpu, "rss": rss, "peak_rss": peak,
        "restart_s": restart_s, "restart_cpu": restart_cpu, "restart_read": tail, "disk_mib": disk / 1024 / 1024,
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


def _row(
    stage: str, path: str, keys: int, rss: float, more_rss: float | None, **rest: Any
) -> dict[str, object]:
    seconds, cpu = rest["seconds"], rest["cpu"]
    return {
        "stage": stage, "path": path, "keys": keys, "RSS MiB": round(rss),
        "RSS peak / after reads": None if more_rss is None else round(more_rss),
        "disk MiB": None if rest.get("disk") is None else round(rest["disk"]),
        "keys/s": keys / seconds if seconds else None, "CPU s": cpu,
        "CPU us/key": cpu / keys * 1e6 if keys else None, "restart s": rest.get("restart"),
        "compacted s": rest.get("compacted"),
    }  # fmt: skip


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for stage in STAGES:
        before = _child("dict", stage, str(KEYS))
        rows.append(
            _row(stage, "dict fill", KEYS, before["rss"], None, seconds=before["load_s"], cpu=before["cpu_s"])
        )
        after = _child("rocksdb", stage, str(KEYS))
        rows.append(
            _row(
                stage, "store apply", KEYS, after["rss"], after["rss_after_reads"], seconds=after["load_s"],
                cpu=after["cpu_s"], disk=after["disk_mib"], restart=after["reopen_s"],
            )
        )  # fmt: skip
    for stage in REBUILT:
        topic = _child("produce", stage, str(KEYS))["topic"]
        try:
            rebuild = _child("rebuild", stage, topic)
        finally:
            _drop_topic(topic)
        rows.append(
            _row(
                stage, "rebuild from Kafka", rebuild["read"], rebuild["rss"], rebuild["peak_rss"],
                seconds=rebuild["serving_s"], cpu=rebuild["rebuild_cpu"], disk=rebuild["disk_mib"],
                restart=rebuild["restart_s"],
                compacted=rebuild["compacted_s"],
            )
        )  # fmt: skip
    restore = throttle_restore(KEYS)
    cold, warm = restore["cold"], restore["warm"]
    rows.append(
        _row(
            "throttle", "worker restore (worker RSS)", KEYS, cold["rss"], cold["peak_rss"],
            seconds=cold["ready_s"], cpu=cold["cpu_s"], disk=restore["disk_mib"], restart=warm["ready_s"],
        )
    )  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        mode, stage, arg = argv[1], argv[2], argv[3]
        if mode == "dict":
            result = child_dict(stage, int(arg))
        elif mode == "rocksdb":
            result = child_rocksdb(stage, int(arg))
        elif mode == "produce":
            result = child_produce(stage, int(arg))
        elif mode == "throttle-produce":
            result = child_throttle_produce(int(arg))
        else:
            result = child_rebuild(stage, arg)
        print(json.dumps(result))
        return 0
    from benchmarks import format_table

    print(format_table(TITLE, run()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
