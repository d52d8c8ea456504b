"""The API middleware's cost: request latency of the sample CMDB (examples/cmdb) over real HTTP
(uvicorn, keep-alive client, one request at a time), without and with the middleware publishing each
create/update to the real Kafka. Publishing happens after the response in a background thread, so the
difference is the capture (body copies, route match, enqueue), not Kafka.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from whale.settings import WhaleSettings

TITLE = "API middleware: sample CMDB request latency (ms), without and with Whale events"
REQUESTS = 3_000
WARMUP = 300
ROOT = Path(__file__).resolve().parents[1]


def _cmdb() -> Any:
    spec = importlib.util.spec_from_file_location("bench_cmdb_app", ROOT / "examples" / "cmdb" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cmdb_app"] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(publish: bool, port: int, stop: Any, out: Any) -> None:
    """Child process: one CMDB under uvicorn until ``stop``; then reports the middleware's counts."""
    cmdb = _cmdb()
    app = cmdb.create_app(WhaleSettings(), publish=publish, source="/bench/cmdb")
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop.wait()
    server.should_exit = True  # graceful: the lifespan shutdown flushes the middleware's queue
    thread.join(120)
    counts = _published(app) if publish else None
    out.put({"published": counts.published if counts else 0, "dropped": counts.dropped if counts else 0})


class _Server:
    """Each app in its own process, so the middleware's background thread only competes with its own app."""

    def __init__(self, publish: bool) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.port = _free_port()
        self.out = ctx.Queue()
        self.stopping = ctx.Event()
        self.process = ctx.Process(
            target=_serve, args=(publish, self.port, self.stopping, self.out), daemon=True
        )
        self.process.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/cis", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the benchmark app did not start")

    def stop(self) -> tuple[float, dict[str, int]]:
        """Graceful shutdown (the middleware flushes its queue); how long it took, and the counts."""
        started = time.perf_counter()
        self.stopping.set()
        counts: dict[str, int] = self.out.get(timeout=120)
        self.process.join(30)
        return time.perf_counter() - started, counts


def _call(client: httpx.Client, i: int) -> float:
    started = time.perf_counter()
    if i % 2 == 0:
        answer = client.post(
            "/cis", json={"name": f"ci-{i}", "owner": "ops", "attributes": {"password": "x"}}
        )
    else:
        answer = client.put("/cis/ci-1", json={"owner": f"team-{i}"})
    elapsed = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    return elapsed


def _measure(modes: dict[str, bool], requests: int) -> dict[str, tuple[list[float], float, dict[str, int]]]:
    """Both apps run side by side and requests alternate between them (the order flips every
    request), so load from other processes on a shared machine hits both modes alike."""
    servers = {mode: _Server(publish) for mode, publish in modes.items()}
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    clients = {mode: httpx.Client(base_url=f"http://127.0.0.1:{srv.port}") for mode, srv in servers.items()}
    try:
        order = list(modes)
        for i in range(WARMUP + requests):
            for mode in order if i % 2 == 0 else reversed(order):
                elapsed = _call(clients[mode], i)
                if i >= WARMUP:
                    latencies[mode].append(elapsed)
    finally:
        for client in clients.values():
            client.close()
    return {mode: (latencies[mode], *srv.stop()) for mode, srv in servers.items()}


def _row(mode: str, latencies: list[float], shutdown: float, extra: dict[str, Any]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "mode": mode,
        "requests": len(latencies),
        "p50 ms": statistics.median(ordered),
        "p99 ms": ordered[int(len(ordered) * 0.99) - 1],
        "mean ms": statistics.fmean(ordered),
        "shutdown s": shutdown,
        "events published": extra.get("published", 0),
        "dropped": extra.get("dropped", 0),
    }


def run() -> list[dict[str, Any]]:
    results = _measure({"without middleware": False, "with middleware": True}, REQUESTS)
    return [
        _row(mode, latencies, shutdown, counts) for mode, (latencies, shutdown, counts) in results.items()
    ]


def _published(app: Any) -> Any:
    from whale_adapters.middleware import WhaleASGIMiddleware

    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, WhaleASGIMiddleware):
        layer = getattr(layer, "app", None)
    assert layer is not None, "the middleware is not in the stack"
    return layer.publisher.counts


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(TITLE, run()))
