"""The whole stack end to end: POST /events accepted -> rule -> executor -> result event on whale.results.

Every service runs as its own process (``python -m whale run ...``: event-center, dedupe, indexer,
to-do stage, rule engine, an executor pool of its own) on the real Kafka and Elasticsearch. One rule
sends ``bench.e2e.ping`` events to ``core.noop``. A paced sender offers 100, 500 and 1,000 events/s
(batches every 10 ms) for ``WHALE_BENCH_E2E_SECONDS`` (15) seconds each; latency is from the 202
(Kafka acked the event) to the moment a consumer of ``whale.results`` reads the action's
``whale.action.succeeded`` (matched by correlation id). Then the highest ingest throughput (batches
of 100, 8 concurrent senders, 10 s), then CPU seconds and peak RSS (``VmHWM``) of every service
process, from /proc. Run alone with ``python -m benchmarks.bench_e2e``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from whale import topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.settings import WhaleSettings
from whale.tail import tail_consumer

TITLE = "End to end (POST accepted -> whale.action.succeeded of core.noop), whole stack as processes"
TYPE = "bench.e2e.ping"
BLAST = "bench.e2e.blast"  # ingest only: no rule matches, and the to-do stage is told to ignore it
RATES = (100, 500, 1000)
SECONDS = float(os.environ.get("WHALE_BENCH_E2E_SECONDS", "15"))
DRAIN = 60.0
SERVICES = ("event-center", "dedupe", "indexer", "todo", "rule-engine", "executor")
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Results:
    """Reads whale.results from its end in a thread: correlation id -> first time a result was read."""

    def __init__(self, settings: WhaleSettings, source: str) -> None:
        self.seen: dict[str, float] = {}
        self._source = source
        self._stop = threading.Event()
        self._consumer = tail_consumer(settings, topics.RESULTS)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch: Any = self._consumer.consume(1000, 0.1)
            for msg in batch:
                if msg.error() is not None:
                    continue
                now = time.time()
                try:
                    event = from_kafka(KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers())))
                except Exception:
                    continue
                if event.type == "whale.action.succeeded" and event.source == self._source:
                    self.seen.setdefault(str(event.extensions.get("correlationid")), now)
        self._consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Stack:
    def __init__(self, settings: WhaleSettings, workdir: Path) -> None:
        self.workdir = workdir
        self.pool = f"bench-{uuid.uuid4().hex[:8]}"
        rules = workdir / "rules"
        rules.mkdir()
        rule = {
            "id": f"bench-e2e-{self.pool}",
            "match": {"field": "type", "equals": TYPE},
            "target": {"kind": "action", "name": "core.noop", "pool": self.pool},
        }
        (rules / "bench.yaml").write_text(json.dumps(rule))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health = {"rule-engine": _free_port(), "executor": _free_port(), "todo": _free_port()}
        self.env = {
            **os.environ,
            "WHALE_DEV_MODE": "true",
            "WHALE_LOG_LEVEL": "warning",
            "WHALE_EVENT_CENTER_PORT": str(self.port),
            "WHALE_DEDUPE_PORT": str(_free_port()),
            "WHALE_INDEXER_PORT": str(_free_port()),
            "WHALE_RULES_DIR": str(rules),
            "WHALE_RULE_ENGINE_APP_ID": f"whale-bench-{self.pool}",
            "WHALE_RULE_ENGINE_PORT": str(self.health["rule-engine"]),
            "WHALE_EXECUTOR_PORT": str(self.health["executor"]),
            "WHALE_TODO_GROUP": f"whale-bench-todo-{self.pool}",
            "WHALE_TODO_PORT": str(self.health["todo"]),
            "WHALE_TODO_IGNORE_TYPE_PREFIXES": json.dumps(["whale.", BLAST]),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        ensure_topics(settings, [topics.pool_topic_spec(self.pool)])

    def start(self) -> None:
        for name in SERVICES:
            args = ["--pool", self.pool] if name == "executor" else []
            log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "whale", "run", name, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self._wait(f"{self.url}/readyz")
        self._wait(f"http://127.0.0.1:{self.health['rule-engine']}/readyz")
        self._wait(f"http://127.0.0.1:{self.health['executor']}/readyz")
        self._wait(f"http://127.0.0.1:{self.health['todo']}/readyz")
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
        for name in (TYPE, BLAST):
            httpx.put(f"{self.url}/schemas/{name}", json=schema, timeout=30).raise_for_status()

    def _wait(self, url: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{url} not ready within {timeout}s (logs in {self.workdir})")

    def usage(self) -> dict[str, tuple[float, float]]:
        """service -> (CPU seconds so far, peak RSS MiB), from /proc."""
        out = {}
        for name, proc in self.procs.items():
            try:
                stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
            cpu = (int(stat[11]) + int(stat[12])) / TICKS
            hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
            out[name] = (cpu, hwm / 1024)
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _event(run: str, type: str = TYPE) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/bench/e2e/{run}",
        "type": type,
        "data": {"n": 1},
    }


async def _offer(url: str, rate: int, seconds: float, accepted: dict[str, float]) -> int:
    """Send ``rate`` events/s for ``seconds`` in batches every 10 ms; returns the rejected count."""
    run = uuid.uuid4().hex[:8]
    per_tick = max(1, rate // 100)
    tick = per_tick / rate
    rejected = 0
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def post(batch: list[dict[str, Any]]) -> None:
            nonlocal rejected
            async with session.post(f"{url}/events", data=json.dumps(batch), headers=headers) as response:
                body = await response.json()
                now = time.time()
                if response.status == 202:
                    for event in batch:
                        accepted[event["id"]] = now
                else:
                    rejected += len(batch) - int(body.get("accepted", 0))
                    for result in body.get("results", []):
                        if result.get("status") == 202:
                            accepted[str(result["id"])] = now

        tasks = []
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            tasks.append(asyncio.create_task(post([_event(run) for _ in range(per_tick)])))
            n += 1
            await asyncio.sleep(max(0.0, started + n * tick - time.monotonic()))
        await asyncio.gather(*tasks)
    return rejected


async def _blast(url: str, seconds: float = 10.0, batch: int = 100, senders: int = 8) -> float:
    run = uuid.uuid4().hex[:8]
    count = 0
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders)) as session:
        deadline = time.monotonic() + seconds

        async def sender() -> None:
            nonlocal count
            while time.monotonic() < deadline:
                body = json.dumps([_event(run, BLAST) for _ in range(batch)])
                async with session.post(f"{url}/events", data=body, headers=headers) as response:
                    answer = await response.json()
                    count += int(answer.get("accepted", 0))

        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(senders)))
        return count / (time.monotonic() - started)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run() -> list[dict[str, object]]:
    settings = WhaleSettings()
    ensure_topics(settings)
    workdir = Path(tempfile.mkdtemp(prefix="whale-bench-e2e-"))
    stack = Stack(settings, workdir)
    rows: list[dict[str, object]] = []
    results = Results(settings, f"/whale/executor/{stack.pool}")
    try:
        stack.start()
        asyncio.run(_offer(stack.url, 20, 3.0, {}))  # warm-up: the whole chain is assigned and hot
        time.sleep(5)
        for rate in RATES:
            accepted: dict[str, float] = {}
            before = stack.usage()
            rejected = asyncio.run(_offer(stack.url, rate, SECONDS, accepted))
            deadline = time.monotonic() + DRAIN
            while time.monotonic() < deadline and not all(i in results.seen for i in accepted):
                time.sleep(0.5)
            latencies = [(results.seen[i] - t) * 1000 for i, t in accepted.items() if i in results.seen]
            after = stack.usage()
            cpu = sum(after[n][0] - before.get(n, (0.0, 0.0))[0] for n in after)
            rows.append(
                {
                    "measure": f"offered {rate}/s for {SECONDS:g}s",
                    "accepted": len(accepted),
                    "rejected": rejected,
                    "results": len(latencies),
                    "p50 ms": _percentile(latencies, 0.50),
                    "p95 ms": _percentile(latencies, 0.95),
                    "p99 ms": _percentile(latencies, 0.99),
                    "stack CPU s": cpu,
                    "load avg": os.getloadavg()[0],
                }
            )
        ingest = asyncio.run(_blast(stack.url))
        rows.append({"measure": f"highest ingest (batches of 100, 8 senders): {ingest:,.0f} events/s"})
        for name, (cpu, rss) in sorted(stack.usage().items()):
            rows.append({"measure": f"{name}: {cpu:.1f} CPU s in total, peak RSS {rss:.0f} MiB"})
    finally:
        results.close()
        stack.stop()
    return rows


if __name__ == "__main__":
    import benchmarks

    print(benchmarks.format_table(TITLE, run()))
