"""``whale up`` (what ``make run`` calls): the whole platform on this machine until Ctrl-C.

Starts Kafka and Elasticsearch (unless ``WHALE_KAFKA_BOOTSTRAP`` / ``WHALE_ES_URL`` point at the
user's clusters), ensures the topics, starts every installed service as its own process with its
log lines prefixed by its name, and on Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from whale.admin import ensure_topics
from whale.cli.run import services
from whale.settings import WhaleSettings

# Arguments each service gets under `whale up`; services not listed start with none.
SERVICE_ARGS: dict[str, list[str]] = {"executor": ["--pool", "default"]}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("up", help="start the whole platform (infra, topics, every service) until Ctrl-C")
    parser.add_argument("--no-services", action="store_true", help="only infrastructure and topics")
    parser.add_argument("--keep-infra", action="store_true", help="leave Kafka/Elasticsearch running on exit")
    parser.set_defaults(handler=_up)


def _pump(name: str, stream: IO[bytes], width: int) -> None:
    prefix = f"{name:<{width}} | ".encode()
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


def _up(args: argparse.Namespace) -> int:
    from whale.infra import stack

    settings = WhaleSettings()
    status = stack.up(settings)
    print(status.describe() if hasattr(status, "describe") else status, flush=True)
    for report in ensure_topics(settings):
        print(f"topic {report.name}: {report.action}", flush=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    if not args.no_services:
        env = {**os.environ}
        env.setdefault("WHALE_DEV_MODE", "true")
        if env["WHALE_DEV_MODE"].lower() == "true":
            print(
                "dev mode: event ingest accepts requests without credentials (WHALE_DEV_MODE=true)",
                flush=True,
            )
        names = sorted(services())
        width = max((len(n) for n in names), default=8)
        for name in names:
            cmd = [sys.executable, "-m", "whale", "run", name, *SERVICE_ARGS.get(name, [])]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            procs[name] = proc
            assert proc.stdout is not None
            threading.Thread(target=_pump, args=(name, proc.stdout, width), daemon=True).start()
    print("Whale is up. Press Ctrl-C to stop.", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}", flush=True)
                    stopping.set()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep_infra:
            stack.down(settings)
    return 0
