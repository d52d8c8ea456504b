"""The event center's runs view (``/runs``, ``/approvals``) over many recorded runs: a real event
center (``whale run event-center``, dev mode) in a subprocess, its ``whale.executor.state`` view
pointed at a throw-away compacted topic holding ``RUNS`` finished ``core.noop`` action runs (records
as the executor writes them, about 700 bytes each) and ``WAITING`` workflow runs waiting for an
approval. Measured: time from start to a complete view (``GET /runs`` total), RSS and CPU seconds
(start-up included) then (``VmRSS``, ``/proc/<pid>/stat``),
``GET /runs`` latency and the event center's CPU per request (``/proc/<pid>/stat``), peak RSS
(``VmHWM``), and a restart's time to a complete view.

Run alone with ``python -m benchmarks.bench_runs_view`` (``WHALE_BENCH_RUNS`` changes ``RUNS``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from benchmarks import stop_process
from benchmarks.bench_executor import _cpu
from benchmarks.bench_ingest import _free_port
from whale.admin import ensure_topics
from whale.settings import WhaleSettings
from whale.topics import TopicSpec

TITLE = "Event center runs view (GET /runs over the whale.executor.state view)"
KEY = ("case",)
COMPARE = {"ms p50": "min", "CPU ms/request": "min", "s": "min", "CPU s": "min", "RSS MiB": "min"}
RUNS = int(os.environ.get("WHALE_BENCH_RUNS", "30000"))
WAITING = 20
REQUESTS = 30
T0 = 1_764_547_200.0  # 2025-12-01
# Start the event center with its runs view reading the benchmark's topic instead of the real one
START = (
    "import os, sys, whale.topics as t; t.EXECUTOR_STATE = os.environ['BENCH_STATE_TOPIC']; "
    "from whale_event_center.app import main; sys.exit(main([]))"
)


def _run_record(n: int) -> dict[str, Any]:
    run_id = f"act-{uuid.uuid5(uuid.NAMESPACE_OID, str(n)).hex}"
    key = f"bench-{n}"
    return {
        "kind": "action", "status": "finished", "run_id": run_id, "pool": "default", "attempt": 1,
        "target": {"kind": "action", "name": "core.noop", "pool": "default"}, "input": {"n": n},
        "idempotency_key": key, "request_id": uuid.uuid4().hex, "requested_by": "/whale/rule-engine",
        "rule": {"id": "bench-rule", "version": 1}, "started_at": T0 + n, "seq": 2, "recorded_at": T0 + n,
        "result_event": {"type": "whale.action.succeeded", "time": T0 + n + 0.01, "id": uuid.uuid4().hex,
                         "source": "/whale/executor/default", "correlationid": uuid.uuid4().hex,
                         "data": {"run_id": run_id, "output": {"ok": True}, "duration_ms": 1}},
    }  # fmt: skip


def _waiting_record(n: int) -> dict[str, Any]:
    gate = {"status": "waiting", "message": "go?", "since": T0 + RUNS + n, "approvers": {"role": "operator"}}
    return {"kind": "workflow", "status": "running", "run_id": f"wf-bench-{n}", "workflow": "bench.gate",
            "pool": "default", "started_at": T0 + RUNS + n, "recorded_at": T0 + RUNS + n, "seq": 1,
            "tasks": {"gate": gate}}  # fmt: skip


def _fill(settings: WhaleSettings, topic: str) -> None:
    from whale_executor.state import state_message

    producer = Producer(
        {**settings.kafka_config(), "linger.ms": 50, "queue.buffering.max.messages": 1_000_000}
    )
    records = [(f"default/bench-{n}", _run_record(n)) for n in range(RUNS)]
    records += [(f"default/wf-{n}", _waiting_record(n)) for n in range(WAITING)]
    for key, record in records:
        message = state_message(key, "whale.executor.run", "/whale/executor/default", record)
        assert message is not None
        while True:
            try:
                producer.produce(topic, key=message.key, value=message.value, headers=list(message.headers))
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError(f"could not write {topic}")


def _mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", START], env=env, stdout=subprocess.DEVNULL)


def _complete(url: str, proc: subprocess.Popen[bytes], timeout: float = 240) -> float:
    """Seconds until ``GET /runs`` shows every run (from now)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the event center exited with code {proc.returncode}")
        try:
            answer = httpx.get(f"{url}/runs", params={"limit": 1}, timeout=30)
            if answer.status_code == 200 and answer.json()["total"] == RUNS + WAITING:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the runs view did not become complete")


def _requests(pid: int, url: str, case: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get(path, params=params).raise_for_status()  # warm-up
        cpu, latencies = _cpu(pid), []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            client.get(path, params=params).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
        used = _cpu(pid) - cpu
    return {"case": case, "ms p50": statistics.median(latencies), "ms max": max(latencies),
            "CPU ms/request": used * 1000 / REQUESTS}  # fmt: skip


def run() -> list[dict[str, Any]]:
    settings = WhaleSettings()
    topic = f"bench.executor.state.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(topic, 3, "benchmark runs view", compacted=True)])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    try:
        _fill(settings, topic)
        with tempfile.TemporaryDirectory(prefix="whale-bench-runs-") as state:
            env = {**os.environ, "WHALE_DEV_MODE": "true", "WHALE_EVENT_CENTER_PORT": str(port),
                   "WHALE_LOG_LEVEL": "warning", "WHALE_STATE_DIR": state, "BENCH_STATE_TOPIC": topic}  # fmt: skip
            proc = _start(env)
            try:
                ready = _complete(url, proc)
                rss = _mib(proc.pid, "VmRSS:")
                rows.append({"case": f"start, view of {RUNS:,} runs complete", "s": ready, "RSS MiB": rss,
                             "CPU s": _cpu(proc.pid)})  # fmt: skip
                rows.append(_requests(proc.pid, url, "GET /runs (100 newest)", "/runs", {}))
                rows.append(_requests(proc.pid, url, "GET /runs?offset=1000", "/runs", {"offset": 1000}))
                rows.append(_requests(proc.pid, url, "GET /runs?state=active", "/runs", {"state": "active"}))
                rows.append(_requests(proc.pid, url, "GET /runs?state=succeeded&name=core.noop&limit=10",
                                      "/runs", {"state": "succeeded", "name": "core.noop", "limit": 10}))  # fmt: skip
                rows.append(_requests(proc.pid, url, "GET /approvals", "/approvals", {}))
                rows.append({"case": "peak after the requests", "RSS MiB": _mib(proc.pid, "VmHWM:")})
            finally:
                stop_process(proc)
            disk = sum(p.stat().st_size for p in Path(state).rglob("*") if p.is_file())
            proc = _start(env)
            try:
                ready = _complete(url, proc)
                rows.append({"case": "restart, view complete", "s": ready, "RSS MiB": _mib(proc.pid, "VmRSS:"),
                             "CPU s": _cpu(proc.pid), "disk MiB": disk / 2**20})  # fmt: skip
            finally:
                stop_process(proc)
    finally:
        AdminClient(settings.kafka_config()).delete_topics([topic])
    return rows


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(TITLE, run()))
