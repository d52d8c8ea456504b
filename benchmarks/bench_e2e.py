"""The whole stack end to end: POST /events accepted -> rule -> executor -> result event on whale.results.

Every service runs as its own process (``python -m whale run ...``: event-center, dedupe, indexer,
to-do stage, rule engine, an executor pool of its own) on the real Kafka and Elasticsearch. One rule
sends ``bench.e2e.ping`` events to ``core.noop``. A paced sender offers each rate of
``WHALE_BENCH_E2E_RATES`` (``1,100,200,500,1000`` events/s; 200 is the latency target's rate) in
batches every 10 ms for ``WHALE_BENCH_E2E_SECONDS`` (15) seconds; latency is from the 202 (Kafka
acked the event) to the moment a consumer of ``whale.results`` reads the action's
``whale.action.succeeded`` (matched by correlation id). The phase ends when every accepted event's
result was read or ``WHALE_BENCH_E2E_DRAIN`` (60) seconds after the last send; ``drain s`` is how
long results kept arriving after the last send (a growing backlog shows as a long drain). CPU per
event is user+system time of every service process and its children (all threads, from
``/proc/<pid>/stat``) over the phase including its drain, divided by the events accepted, for the
whole stack and per service; each result's latency split into hops from Kafka record timestamps
(:mod:`benchmarks.hops`), p50/p99 per hop and rate. Before the first rate, every service's CPU over
``WHALE_BENCH_E2E_IDLE`` (30) seconds with no traffic (ms per second). Then the highest ingest
throughput (batches of 100, 8 concurrent senders, 10 s) and peak RSS (``VmHWM``) of every service. Run alone with ``python -m
benchmarks.bench_e2e``; side by side with ``make bench BENCH=bench_e2e BASELINE=<ref>`` (the
service processes inherit ``PYTHONPATH``, so each column's stack runs that column's code; checked
before the stack starts).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from benchmarks.hops import EXECUTOR_HOPS, HOPS, Tap
from whale import topics
from whale.admin import ensure_topics
from whale.settings import WhaleSettings

TITLE = "End to end (POST accepted -> whale.action.succeeded of core.noop), whole stack as processes"
TYPE = "bench.e2e.ping"
BLAST = "bench.e2e.blast"  # ingest only: no rule matches, and the to-do stage is told to ignore it
RATES = tuple(int(r) for r in os.environ.get("WHALE_BENCH_E2E_RATES", "1,100,200,500,1000").split(","))
SECONDS = float(os.environ.get("WHALE_BENCH_E2E_SECONDS", "15"))
DRAIN = float(os.environ.get("WHALE_BENCH_E2E_DRAIN", "60"))
IDLE = float(os.environ.get("WHALE_BENCH_E2E_IDLE", "30"))
SERVICES = ("event-center", "dedupe", "indexer", "todo", "rule-engine", "executor")
TICKS = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "whale",
    "whale_event_center",
    "whale_dedupe",
    "whale_indexer",
    "whale_todo",
    "whale_rule_engine",
    "whale_executor",
)

KEY = ("measure",)
COMPARE = {
    "events/s accepted": "max",
    "results": "max",
    "p50 ms": "min",
    "p99 ms": "min",
    "drain s": "min",
    "CPU ms/event": "min",
    "idle CPU ms/s": "min",
    "peak RSS MiB": "min",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
            # an indexer group of its own, from now on: a second stack (side by side) does not inherit
            # the first one's unindexed backlog, which showed as its idle CPU
            "WHALE_INDEXER_GROUP": f"whale-bench-indexer-{self.pool}",
            "WHALE_INDEXER_OFFSET_RESET": "latest",
            "WHALE_TODO_PORT": str(self.health["todo"]),
            "WHALE_TODO_IGNORE_TYPE_PREFIXES": json.dumps(["whale.", BLAST]),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        pool = topics.pool_topic_spec(self.pool)
        ensure_topics(settings, [pool])
        self.topics = (topics.INGEST, topics.EVENTS, pool.name, topics.RESULTS)  # an event's way

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

    def check_code(self) -> str:
        """Where the service processes import Whale from; with ``PYTHONPATH`` set, it must be from there."""
        probe = "import importlib, sys\nfor n in sys.argv[1:]: print(importlib.import_module(n).__file__)"
        done = subprocess.run(
            [sys.executable, "-c", probe, *PACKAGES], env=self.env, capture_output=True, text=True, check=True
        )
        files = [Path(line).resolve() for line in done.stdout.split()]
        roots = [Path(p).resolve() for p in self.env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if roots:
            stray = [str(f) for f in files if not any(r in f.parents for r in roots)]
            if stray:
                raise RuntimeError(f"service code not from PYTHONPATH {roots}: {stray}")
        return str(files[0].parent.parent)

    def usage(self) -> dict[str, tuple[float, float]]:
        """service -> (CPU seconds so far of its process and descendants, peak RSS MiB), from /proc."""
        stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU s)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
        out = {}
        for name, proc in self.procs.items():
            if proc.pid not in stats:
                continue
            family, cpu = {proc.pid}, 0.0
            for pid in sorted(stats):  # children have higher pids unless pids wrapped; good enough here
                if pid in family or stats[pid][0] in family:
                    family.add(pid)
                    cpu += stats[pid][1]
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
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


async def _offer(
    url: str, rate: int, seconds: float, accepted: dict[str, float], sent: dict[str, float] | None = None
) -> int:
    """Send ``rate`` events/s for ``seconds`` in batches every 10 ms (``sent``: event id -> when its
    POST was sent; ``accepted``: -> when its 202 was read); returns the rejected count."""
    run = uuid.uuid4().hex[:8]
    per_tick = max(1, rate // 100)
    tick = per_tick / rate
    rejected = 0
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def post(batch: list[dict[str, Any]]) -> None:
            nonlocal rejected
            if sent is not None:
                now = time.time()
                sent.update((event["id"], now) for event in batch)
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


def _phase(stack: Stack, results: Tap, rate: int) -> tuple[dict[str, object], list[dict[str, object]]]:
    """One offered rate: the stack's row, then one row per hop and one CPU-per-event row per service."""
    accepted: dict[str, float] = {}
    posted: dict[str, float] = {}
    before = stack.usage()
    started = time.monotonic()
    rejected = asyncio.run(_offer(stack.url, rate, SECONDS, accepted, posted))
    sent, sent_at = time.monotonic(), time.time()
    deadline = sent + DRAIN
    while time.monotonic() < deadline and not all(i in results.seen for i in accepted):
        time.sleep(0.2)
    after = stack.usage()
    latencies = [(results.seen[i] - t) * 1000 for i, t in accepted.items() if i in results.seen]
    last = max((results.seen[i] for i in accepted if i in results.seen), default=time.time())
    drain = max(0.0, last - sent_at)
    events = max(1, len(accepted))
    cpu = {n: after[n][0] - before.get(n, (0.0, 0.0))[0] for n in after}
    row: dict[str, object] = {
        "measure": f"offered {rate}/s",
        "seconds": SECONDS,
        "accepted": len(accepted),
        "rejected": rejected,
        "events/s accepted": round(len(accepted) / max(1e-9, sent - started), 1),
        "results": len(latencies),
        "p50 ms": round(_percentile(latencies, 0.50), 1),
        "p95 ms": round(_percentile(latencies, 0.95), 1),
        "p99 ms": round(_percentile(latencies, 0.99), 1),
        "drain s": round(drain, 2),
        "CPU ms/event": round(sum(cpu.values()) * 1000 / events, 3),
        "load avg": round(os.getloadavg()[0], 2),
    }
    hops = results.hops(list(accepted), posted, accepted, stack.topics)
    split: list[dict[str, object]] = [
        {
            "measure": f"hop {hop} at {rate}/s",
            "results": len(hops[hop]),
            "p50 ms": round(_percentile(hops[hop], 0.50), 1),
            "p99 ms": round(_percentile(hops[hop], 0.99), 1),
        }
        for hop in (*HOPS, *EXECUTOR_HOPS)
    ]
    split += [
        {"measure": f"{name} at {rate}/s", "CPU ms/event": round(cpu[name] * 1000 / events, 3)}
        for name in SERVICES
        if name in cpu
    ]
    return row, split


def _idle(stack: Stack) -> list[dict[str, object]]:
    """CPU of each service over ``IDLE`` seconds with no traffic, in ms per second (0.1% of a core)."""
    before = stack.usage()
    started = time.monotonic()
    time.sleep(IDLE)
    after = stack.usage()
    elapsed = time.monotonic() - started
    cpu = {n: (after[n][0] - before.get(n, (0.0, 0.0))[0]) * 1000 / elapsed for n in after}
    rows: list[dict[str, object]] = [
        {"measure": f"{name} idle", "idle CPU ms/s": round(cpu[name], 2)} for name in SERVICES if name in cpu
    ]
    rows.append({"measure": "stack idle", "idle CPU ms/s": round(sum(cpu.values()), 2)})
    return rows


def run() -> list[dict[str, object]]:
    settings = WhaleSettings()
    ensure_topics(settings)
    workdir = Path(tempfile.mkdtemp(prefix="whale-bench-e2e-"))
    stack = Stack(settings, workdir)
    rows: list[dict[str, object]] = []
    sources = dict(
        zip(stack.topics, ("/bench/e2e/", "/bench/e2e/", "", f"/whale/executor/{stack.pool}"), strict=True)
    )
    results = Tap(
        settings,
        sources,
        results=topics.RESULTS,
        done="whale.action.succeeded",
        requests=stack.topics[2],
        state=(topics.EXECUTOR_STATE, f"{stack.pool}/"),
    )
    try:
        print(f"bench_e2e: service code from {stack.check_code()}", file=sys.stderr, flush=True)
        stack.start()
        asyncio.run(_offer(stack.url, 20, 3.0, {}))  # warm-up: the whole chain is assigned and hot
        time.sleep(5)
        split: list[dict[str, object]] = _idle(stack) if IDLE > 0 else []
        for rate in RATES:
            row, per_service = _phase(stack, results, rate)
            rows.append(row)
            split.extend(per_service)
        rows.extend(split)
        ingest = asyncio.run(_blast(stack.url))
        rows.append({"measure": "highest ingest (batches of 100, 8 senders)", "events/s accepted": ingest})
        for name, (_, rss) in sorted(stack.usage().items()):
            rows.append({"measure": f"{name}: peak RSS", "peak RSS MiB": round(rss)})
    finally:
        results.close()
        stack.stop()
    return rows


if __name__ == "__main__":
    import benchmarks

    print(benchmarks.format_table(TITLE, run()))
