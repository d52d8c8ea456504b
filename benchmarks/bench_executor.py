"""Executor throughput on the real Kafka: a real executor (``whale run executor``) in a subprocess
consumes action requests (``core.noop``, ``core.sleep``) from its own pool topic; every request costs
two acknowledged state writes on ``whale.executor.state`` (started, finished) and one acknowledged
result on ``whale.results``. Throughput = requests / (first request sent -> last result read);
latency = one no-op request at a time, sent -> result read.

Run alone with ``python -m benchmarks.bench_executor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from benchmarks import stop_process
from whale import compacted, topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.tail import tail_consumer

TITLE = "Executor: action requests -> results through a real executor (requests/s, CPU, latency ms)"
KEY = ("action", "concurrency")
COMPARE = {"requests/s": "max", "CPU ms/request": "min", "seq p50 ms": "min", "seq p99 ms": "min"}
TICKS = os.sysconf("SC_CLK_TCK")
SEQUENTIAL = 200
# (action, params, executor concurrency, burst size): no-op measures the executor's own cost; a 50 ms
# sleep shows the concurrency bound at work.
SCENARIOS: tuple[tuple[str, dict[str, Any], int, int], ...] = (
    ("core.noop", {}, 16, 2_000),
    ("core.sleep", {"seconds": 0.05}, 1, 100),
    ("core.sleep", {"seconds": 0.05}, 64, 1_000),
)


class Results:
    """Counts the results of one pool on whale.results, from the end of the topic on."""

    def __init__(self, settings: WhaleSettings, pool: str) -> None:
        self.pool = pool
        self.seen: dict[str, float] = {}
        self._consumer = tail_consumer(settings, topics.RESULTS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch: list[Any] = self._consumer.consume(500, 0)
            if not batch:
                first = self._consumer.poll(0.05)
                batch = [] if first is None else [first]
            for msg in batch:
                if msg.error() is not None:
                    continue
                try:
                    event = from_kafka(KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers())))
                except Exception:
                    continue
                data = event.data if isinstance(event.data, dict) else {}
                if data.get("pool") == self.pool:
                    if event.type != "whale.action.succeeded":
                        raise RuntimeError(f"unexpected result {event.type}: {data.get('error')}")
                    self.seen.setdefault(str(data["request_id"]), time.perf_counter())
        self._consumer.close()

    async def wait_for(self, ids: list[str], timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(i in self.seen for i in ids):
            if time.monotonic() > deadline:
                missing = sum(1 for i in ids if i not in self.seen)
                raise RuntimeError(f"{missing} results missing after {timeout}s")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _request(pool: str, action: str = "core.noop", params: dict[str, Any] | None = None) -> CloudEvent:
    return CloudEvent.create(
        type="whale.action.requested",
        source="/bench/executor",
        data={
            "rule": None,
            "target": {"kind": "action", "name": action, "pool": pool},
            "params": params or {},
            "idempotency_key": uuid.uuid4().hex,
        },
    )


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICKS


def _start_executor(pool: str, concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WHALE_LOG_LEVEL": "warning", "WHALE_EXECUTOR_APPROVALS": "false"}
    code = "import sys; from whale_executor.app import main; sys.exit(main(sys.argv[1:]))"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, "--pool", pool, "--concurrency", str(concurrency)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _profiler(pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of process ``pid`` into ``$WHALE_BENCH_PROFILE/<name>.txt`` (collapsed
    stacks), when asked for and installed; stopped with SIGINT."""
    folder = os.environ.get("WHALE_BENCH_PROFILE")
    spy = Path(sys.executable).with_name("py-spy")
    if not folder or not spy.exists():
        return None
    out = Path(folder) / f"{name}.txt"
    command = [
        str(spy),
        "record",
        "--pid",
        str(pid),
        "-r",
        "200",
        "-f",
        "raw",
        "-o",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _scenario(
    settings: WhaleSettings, action: str, params: dict[str, Any], concurrency: int, count: int
) -> dict[str, Any]:
    pool = f"bench-{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [topics.pool_topic_spec(pool)])
    results = Results(settings, pool)
    producer = EventProducer(settings)
    log = Path(tempfile.mkstemp(prefix="whale-bench-executor-", suffix=".log")[1])
    proc = _start_executor(pool, concurrency, log)
    try:
        warm = _request(pool)  # readiness: the first result proves the executor consumes
        await producer.send(topics.actions_topic(pool), warm, key=warm.data["idempotency_key"])
        await results.wait_for([warm.id], timeout=120)
        latencies: list[float] = []
        for _ in range(SEQUENTIAL):  # no-op round trips, one at a time
            event = _request(pool)
            sent = time.perf_counter()
            await producer.send(topics.actions_topic(pool), event, key=event.data["idempotency_key"])
            await results.wait_for([event.id])
            latencies.append((results.seen[event.id] - sent) * 1000)
        burst = [_request(pool, action, params) for _ in range(count)]
        side = "base" if "whale-baseline-" in str(Path(compacted.__file__)) else "new"
        spy = _profiler(proc.pid, f"executor-{side}-{action}-{concurrency}")
        await asyncio.sleep(0.5 if spy else 0)  # py-spy attached
        cpu, started = _cpu(proc.pid), time.perf_counter()
        await asyncio.gather(
            *(producer.send(topics.actions_topic(pool), e, key=e.data["idempotency_key"]) for e in burst)
        )
        await results.wait_for([e.id for e in burst])
        elapsed = max(results.seen[e.id] for e in burst) - started
        used = _cpu(proc.pid) - cpu
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(60)
    finally:
        stop_process(proc)
        results.close()
        await compacted.delete(producer, topics.CATALOG, pool)  # a throw-away pool leaves no catalogue
        producer.close()
        AdminClient(settings.kafka_config()).delete_topics([topics.actions_topic(pool)])
    latencies.sort()
    return {
        "action": action + (f" {params['seconds'] * 1000:g} ms" if "seconds" in params else ""),
        "concurrency": concurrency,
        "requests": count,
        "requests/s": count / elapsed,
        "CPU ms/request": round(used / count * 1000, 3),
        "seq p50 ms": round(latencies[len(latencies) // 2], 2),
        "seq p99 ms": round(latencies[int(len(latencies) * 0.99)], 2),
    }


def run() -> list[dict[str, Any]]:
    settings = WhaleSettings()
    ensure_topics(settings)
    return [asyncio.run(_scenario(settings, *scenario)) for scenario in SCENARIOS]


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(TITLE, run()))
