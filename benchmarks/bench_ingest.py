"""Event-center ingest on the real Kafka: a real event center (``whale run event-center``, one
uvicorn worker, dev mode) in a subprocess, writing to a throw-away ingest topic (acks=all), driven by
an aiohttp client over keep-alive connections (httpx's async pool was the bottleneck). Every 202 means Kafka acknowledged the event.

Run alone with ``python -m benchmarks.bench_ingest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import httpx
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from benchmarks import stop_process
from benchmarks.bench_executor import _cpu, _profiler
from whale.admin import ensure_topics
from whale.settings import WhaleSettings
from whale.topics import TopicSpec

TITLE = "Event center ingest (POST /events -> Kafka acked), events/s, CPU and latency (ms)"
KEY = ("case",)
COMPARE = {"events/s": "max", "CPU ms/event": "min", "p50 ms": "min", "p99 ms": "min"}
TYPE = "whale.bench.sample"
SCHEMA = {
    "type": "object",
    "required": ["host", "value"],
    "properties": {"host": {"type": "string"}, "value": {"type": "number"}, "labels": {"type": "object"}},
}
SEQUENTIAL = 2_000
CONCURRENT = 5_000
CONCURRENCY = 16
BATCHES = 100
BATCH_SIZE = 100
BATCH_CONCURRENCY = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(i: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "urn:whale:bench",
        "type": TYPE,
        "subject": f"host-{i % 50}",
        "data": {"host": f"host-{i % 50}", "value": i * 0.5, "labels": {"env": "bench"}},
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _singles(url: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    headers = {"content-type": "application/cloudevents+json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as client:
        counter = iter(range(count))

        async def worker() -> None:
            for i in counter:
                body = json.dumps(_event(i))
                started = time.perf_counter()
                async with client.post("/events", data=body, headers=headers) as response:
                    text = await response.text()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status != 202:
                    raise RuntimeError(f"POST /events answered {response.status}: {text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started), latencies


async def _batches(url: str) -> tuple[float, list[float]]:
    headers = {"content-type": "application/cloudevents-batch+json"}
    latencies: list[float] = []
    async with aiohttp.ClientSession(base_url=url) as client:
        counter = iter(range(BATCHES))

        async def worker() -> None:
            for b in counter:
                body = json.dumps([_event(b * BATCH_SIZE + i) for i in range(BATCH_SIZE)])
                started = time.perf_counter()
                async with client.post("/events", data=body, headers=headers) as response:
                    text = await response.text()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status != 202:
                    raise RuntimeError(f"batch answered {response.status}: {text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(BATCH_CONCURRENCY)))
        return BATCHES * BATCH_SIZE / (time.perf_counter() - started), latencies


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the event center exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the event center did not become ready")


def run() -> list[dict[str, Any]]:
    settings = WhaleSettings()
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(topic, 3, "benchmark ingest", retention_ms=3_600_000)])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "WHALE_DEV_MODE": "true",
        "WHALE_EVENT_CENTER_PORT": str(port),
        "WHALE_EVENT_CENTER_INGEST_TOPIC": topic,
        "WHALE_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "whale", "run", "event-center"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, proc)
        answer = httpx.put(f"{url}/schemas/{TYPE}", json=SCHEMA, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"cannot register {TYPE}: {answer.status_code} {answer.text[:300]}")
        asyncio.run(_singles(url, 300, 4))  # warm-up
        side = "base" if "whale-baseline-" in os.environ.get("PYTHONPATH", "") else "new"
        rows = [
            _measured(proc.pid, "single POST, 1 at a time", SEQUENTIAL, lambda: _singles(url, SEQUENTIAL, 1)),
            _measured(
                proc.pid,
                f"single POST, {CONCURRENCY} concurrent",
                CONCURRENT,
                lambda: _singles(url, CONCURRENT, CONCURRENCY),
                f"ingest-{side}-singles",
            ),
            _measured(
                proc.pid,
                f"batch of {BATCH_SIZE}, {BATCH_CONCURRENCY} concurrent",
                BATCHES * BATCH_SIZE,
                lambda: _batches(url),
                f"ingest-{side}-batches",
                "per batch",
            ),
        ]
    finally:
        stop_process(proc)
        AdminClient(settings.kafka_config()).delete_topics([topic])
    return rows


def _measured(
    pid: int,
    case: str,
    events: int,
    workload: Callable[[], Coroutine[Any, Any, tuple[float, list[float]]]],
    profile: str | None = None,
    unit: str = "per POST",
) -> dict[str, Any]:
    """One case: its rate, the event center's CPU per event (from /proc) and its latencies;
    profiled with py-spy when ``$WHALE_BENCH_PROFILE`` names a folder (see bench_executor)."""
    spy = _profiler(pid, profile) if profile else None
    if spy is not None:
        time.sleep(0.5)  # py-spy attached
    cpu = _cpu(pid)
    rate, latencies = asyncio.run(workload())
    used = _cpu(pid) - cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(60)
    return {
        "case": case,
        "events": events,
        "events/s": rate,
        "CPU ms/event": round(used / events * 1000, 3),
        "p50 ms": statistics.median(latencies),
        "p99 ms": _pct(latencies, 0.99),
        "latency of": unit,
    }


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(TITLE, run()))
