"""The API middleware's cost: request latency of the sample CMDB (examples/cmdb) over real HTTP
(uvicorn, keep-alive client, one request at a time), without and with the middleware publishing each
create/update to the real Kafka. Publishing happens after the response in a background thread, so the
difference is the capture (body copies, route match, enqueue), not Kafka.
"""

from __future__ import annotations

import importlib.util
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


class _Server:
    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> float:
        """Shut down (the middleware flushes its queue here); returns how long it took."""
        started = time.perf_counter()
        self.server.should_exit = True
        self.thread.join(60)
        return time.perf_counter() - started


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


def _measure(apps: dict[str, Any], requests: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Both apps run side by side and requests alternate between them (the order flips every
    request), so load from other processes on a shared machine hits both modes alike."""
    servers = {mode: _Server(app) for mode, app in apps.items()}
    latencies: dict[str, list[float]] = {mode: [] for mode in apps}
    clients = {mode: httpx.Client(base_url=f"http://127.0.0.1:{srv.port}") for mode, srv in servers.items()}
    try:
        modes = list(apps)
        for i in range(WARMUP + requests):
            for mode in modes if i % 2 == 0 else reversed(modes):
                elapsed = _call(clients[mode], i)
                if i >= WARMUP:
                    latencies[mode].append(elapsed)
    finally:
        for client in clients.values():
            client.close()
    return latencies, {mode: srv.stop() for mode, srv in servers.items()}


def _row(mode: str, latencies: list[float], shutdown: float, extra: dict[str, Any]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "mode": mode,
        "requests": len(latencies),
        "p50 ms": statistics.median(ordered),
        "p99 ms": ordered[int(len(ordered) * 0.99) - 1],
        "mean ms": statistics.fmean(ordered),
        "shutdown s": shutdown,
        "events published": extra.get("events published", 0),
        "dropped": extra.get("dropped", 0),
    }


def run() -> list[dict[str, Any]]:
    cmdb = _cmdb()
    settings = WhaleSettings()
    with_events = cmdb.create_app(settings, source="/bench/cmdb")
    apps = {"without middleware": cmdb.create_app(settings, publish=False), "with middleware": with_events}
    latencies, shutdown = _measure(apps, REQUESTS)
    counts = _published(with_events)
    return [
        _row("without middleware", latencies["without middleware"], shutdown["without middleware"], {}),
        _row(
            "with middleware",
            latencies["with middleware"],
            shutdown["with middleware"],
            {"events published": counts.published, "dropped": counts.dropped},
        ),
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
