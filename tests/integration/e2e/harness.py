"""The whole platform as separate processes (``python -m whale run <service>``) for end-to-end tests.

Each service gets free ports. The session has a pool (topic, executor group), a rule-engine app id and
a to-do stage group of its own; the executor serves the shipped scenario catalogue, and the rule
engine and the to-do stage load the shipped rules rewritten to target that pool and to match only
this suite's events (alert name, kernel-error type), so neither a ``whale up`` nor another test
session on the shared broker takes or reacts to them. A local HTTP server stands in for the WeCom
robot. The hosts the scenarios act on over SSH are a real local sshd under many inventory names
(``Platform.host``: a fresh name per test, so no throttle of an earlier run applies)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx

from tests.ports import free_port
from whale.cli.events import register_schemas
from whale.infra.sshd import LocalSshd
from whale.settings import WhaleSettings

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "examples" / "scenarios"
SESSION = uuid.uuid4().hex[:8]
POOL = f"e2e-{SESSION}"  # a pool (topic + consumer group) of this session's own
ALERTNAME = "E2EHostOutOfDiskSpace"
KERNEL_ERROR = "e2e.host.kernel.error"
# The shipped rules, made to match only this suite's events (so a `whale up` or another test session
# on the same broker never reacts to them, nor these rules to theirs) and to target the suite's pool.
REWRITES = (
    ("pool: default", f"pool: {POOL}"),
    ("equals: HostOutOfDiskSpace", f"equals: {ALERTNAME}"),
    ("equals: host.kernel.error", f"equals: {KERNEL_ERROR}"),
    ("id: disk-capacity", "id: disk-capacity-e2e"),
    ("id: dmesg-errors", "id: dmesg-errors-e2e"),
)
BURST = int(os.environ.get("WHALE_E2E_BURST", "1000"))  # alerts of the crash test (one host each)
# inventory names of the session, by prefix: the executor loads its inventory at start-up
HOST_NAMES = {"vm-e2e": 20, "db-e2e": 10, "vm-crash": BURST}
CAPACITY = 100_000  # bytes: the stand-in disk of every vm host (an inventory fact, as log_dir)


class Robot:
    """A WeCom group robot stand-in: records every message, answers ``{"errcode": 0}``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                robot.messages.append({"path": self.path, "body": json.loads(body or b"{}")})
                data = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self._server.server_address[1]}/cgi-bin/webhook/send?key=e2e-secret-key"
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [str(m["body"].get("markdown", {}).get("content", "")) for m in self.messages]

    def close(self) -> None:
        self._server.shutdown()


class Platform:
    """Starts, kills (-9), restarts and stops the service processes."""

    SERVICES = ("event-center", "dedupe", "indexer", "todo", "rule-engine", "executor", "adapters")

    def __init__(self, settings: WhaleSettings, workdir: Path, robot: Robot) -> None:
        self.settings = settings
        self.workdir = workdir
        self.robot = robot
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # other to-do stages on the shared bus announce their own items: ours are known by source
        self.todo_source = f"whale/todo/e2e-{SESSION}"
        self.logs: dict[str, IO[bytes]] = {}
        rules = workdir / "rules"
        rules.mkdir(parents=True, exist_ok=True)
        for path in (SCENARIOS / "rules").glob("*.yaml"):
            text = path.read_text()
            for shipped, ours in REWRITES:
                text = text.replace(shipped, ours)
            (rules / path.name).write_text(text)
        self.ports = {name: free_port() for name in (*self.SERVICES, "dedupe-health", "indexer-health")}
        self.sshd = LocalSshd(workdir / "sshd", free_port())
        self._hosts = {
            prefix: [f"{prefix}-{SESSION}-{i}" for i in range(n)] for prefix, n in HOST_NAMES.items()
        }
        self.event_center = f"http://127.0.0.1:{self.ports['event-center']}"
        self.adapters = f"http://127.0.0.1:{self.ports['adapters']}"
        self.env = {
            **os.environ,
            "WHALE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "WHALE_ES_URL": settings.es_url,
            "WHALE_DEV_MODE": "true",
            "WHALE_LOG_FORMAT": "json",
            "WHALE_EVENT_CENTER_PORT": str(self.ports["event-center"]),
            "WHALE_DEDUPE_PORT": str(self.ports["dedupe-health"]),
            "WHALE_INDEXER_PORT": str(self.ports["indexer-health"]),
            "WHALE_ADAPTERS_PORT": str(self.ports["adapters"]),
            "WHALE_ADAPTERS_DEV": "true",
            "WHALE_RULES_DIR": str(rules),
            "WHALE_RULE_ENGINE_APP_ID": f"whale-e2e-rule-engine-{SESSION}",
            "WHALE_RULE_ENGINE_PORT": str(self.ports["rule-engine"]),
            "WHALE_EXECUTOR_POOL": POOL,
            "WHALE_EXECUTOR_CATALOG_DIRS": json.dumps([str(SCENARIOS / "catalog")]),
            "WHALE_EXECUTOR_PORT": str(self.ports["executor"]),
            # a group of its own per session, starting at the end (no to-dos for the shared bus's history)
            "WHALE_TODO_GROUP": f"whale-e2e-todo-{SESSION}",
            "WHALE_TODO_SOURCE": self.todo_source,
            "WHALE_TODO_PORT": str(self.ports["todo"]),
            "WHALE_EXAMPLE_WECOM_WEBHOOK": robot.url,
            "WHALE_EXECUTOR_SSH_IDLE": "2",  # a burst over a thousand host names keeps few connections
        }

    def log_dir(self, host: str) -> Path:
        """The stand-in log directory of a vm host: its inventory fact ``log_dir`` (the disk rule
        takes it from there through enrichment)."""
        return self.workdir / "hosts" / host / "log"

    def host(self, prefix: str) -> str:
        """An inventory host name (the local sshd) not used by any other test of the session."""
        return self._hosts[prefix].pop(0)

    def start(self, name: str) -> None:
        log = self.logs.get(name) or open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        self.logs[name] = log
        args = ["--pool", POOL] if name == "executor" else []
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "whale", "run", name, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
        )

    def start_all(self) -> None:
        self.sshd.start()
        names = [n for hosts in self._hosts.values() for n in hosts]
        facts = {
            n: {"log_dir": str(self.log_dir(n)), "capacity_bytes": CAPACITY}
            for n in names
            if n.startswith("vm-")
        }
        self.env.update(self.sshd.client_settings(names, facts))
        for name in self.SERVICES:
            self.start(name)
        self.wait_http(f"{self.event_center}/readyz", "event-center")
        self.wait_http(f"{self.adapters}/readyz", "adapters")
        self.wait_http(f"http://127.0.0.1:{self.ports['rule-engine']}/readyz", "rule-engine")
        self.wait_http(f"http://127.0.0.1:{self.ports['executor']}/readyz", "executor")
        self.wait_http(f"http://127.0.0.1:{self.ports['todo']}/readyz", "todo")
        for type_name, status, detail in register_schemas(self.event_center, str(SCENARIOS / "schemas")):
            assert status < 400, f"schema {type_name}: {detail}"
        schema = json.loads((SCENARIOS / "schemas" / "host.kernel.error.json").read_text())
        answer = httpx.put(
            f"{self.event_center}/schemas/{KERNEL_ERROR}", json={**schema, "$id": KERNEL_ERROR}, timeout=30
        )
        assert answer.status_code < 400, answer.text
        self.probe()

    def probe(self, timeout: float = 180.0) -> None:
        """Post an event nobody handles until its to-do shows up: the whole chain (ingest, dedupe,
        to-do stage with its partitions assigned, /todos) is live."""
        kind = f"e2e.probe.{uuid.uuid4().hex[:8]}"
        self.register_type(kind)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            event = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "e2e/probe",
                "type": kind,
                "data": {},
            }
            posted = self.post_event(event)
            if posted.status_code != 202:  # e.g. the new type not yet visible to ingest
                last = posted.text
                time.sleep(1)
                continue
            for _ in range(10):
                answer = httpx.get(f"{self.event_center}/todos", params={"type": kind}, timeout=30)
                if answer.status_code == 200 and answer.json()["todos"]:
                    for item in answer.json()["todos"]:  # leave no open probe behind
                        httpx.post(
                            f"{self.event_center}/todos/{item['id']}/resolve", json={"by": "e2e"}, timeout=30
                        )
                    return
                time.sleep(1)
        raise AssertionError(f"no to-do for the probe within {timeout}s ({last}):\n{self.tail('todo')}")

    def register_type(self, type_name: str) -> None:
        """Register an open schema for a test's own event type."""
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": type_name,
            "type": "object",
        }
        answer = httpx.put(f"{self.event_center}/schemas/{type_name}", json=schema, timeout=30)
        assert answer.status_code < 400, answer.text

    def wait_http(self, url: str, name: str, timeout: float = 300.0, restarts: int = 2) -> None:
        """Wait for ``url`` to answer 200. A service that exits while starting (e.g. it could not
        catch up on a large compacted topic of the shared broker in time) is started again, twice."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                if restarts > 0:
                    restarts -= 1
                    self.start(name)
                    continue
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{name} not ready at {url} within {timeout}s:\n{self.tail(name)}")

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self.logs.values():
            log.close()
        self.sshd.stop()

    # ------------------------------------------------------------------ talking to it
    def post_event(self, event: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.event_center}/events",
            content=json.dumps(event),
            headers={"Content-Type": "application/cloudevents+json"},
            timeout=30,
        )

    def post_alerts(self, alerts: list[dict[str, Any]]) -> httpx.Response:
        payload = {
            "version": "4",
            "groupKey": f"e2e-{uuid.uuid4().hex}",
            "status": "firing",
            "receiver": "whale",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example",
            "alerts": alerts,
        }
        return httpx.post(f"{self.adapters}/alertmanager", json=payload, timeout=30)


def disk_alert(host: str, *, free: str = "8.5") -> dict[str, Any]:
    """One firing alert of the disk scenario as node-exporter's community rule makes it (instance
    ``host:port``, summary and description; a fresh fingerprint and start time)."""
    instance = f"{host}:9100"
    return {
        "status": "firing",
        "labels": {
            "alertname": ALERTNAME,
            "instance": instance,
            "device": "/dev/sda1",
            "fstype": "ext4",
            "mountpoint": "/var/log",
            "job": "node",
            "severity": "warning",
        },
        "annotations": {
            "summary": f"Host out of disk space (instance {instance})",
            "description": f"Disk is almost full (< 10% left)\n  VALUE = {free}\n  LABELS = map[]",
        },
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{uuid.uuid4().int % 10**9:09d}Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": uuid.uuid4().hex[:16],
    }


def fill_log_dir(path: Path, *, old: int, new: int, size: int = 1000, age_days: int = 30) -> None:
    """``old`` files older than ``age_days`` and ``new`` fresh files of ``size`` bytes each."""
    path.mkdir(parents=True, exist_ok=True)
    stamp = time.time() - age_days * 86400
    for i in range(old):
        f = path / f"old-{i}.log"
        f.write_bytes(b"x" * size)
        os.utime(f, (stamp, stamp))
    for i in range(new):
        (path / f"new-{i}.log").write_bytes(b"y" * size)
