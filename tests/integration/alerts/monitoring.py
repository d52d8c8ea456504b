"""A real Prometheus and Alertmanager (Debian's packages) on loopback, for the alert tests.

``deploy/tools/install-prometheus.sh`` installs the packages when they are missing (as root); the
binaries run with the suite's own configuration in a temporary directory: Prometheus scrapes a tiny
``/metrics`` endpoint whose values the test sets (:class:`NodeMetrics`, node-exporter's filesystem
families), evaluates the community rule every second and sends to Alertmanager, whose webhook receiver
is the adapters' ``/alertmanager``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
INSTALL_SCRIPT = ROOT / "deploy" / "tools" / "install-prometheus.sh"
RULES = Path(__file__).with_name("host-out-of-disk-space.rules.yml")
MISSING = 3  # install-prometheus.sh: missing and cannot install (not root / no apt)


class Unavailable(Exception):
    """The binaries are missing and cannot be installed here (the tests skip with this reason)."""


def install() -> tuple[Path, Path]:
    """Paths of prometheus and alertmanager, installed by the project's script if missing."""
    proc = subprocess.run(
        ["sh", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode == MISSING:
        raise Unavailable(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    prometheus, alertmanager = proc.stdout.strip().splitlines()[-2:]
    return Path(prometheus), Path(alertmanager)


class NodeMetrics:
    """A ``/metrics`` endpoint with one filesystem whose free space the test sets (in percent)."""

    SIZE = 1_000_000_000

    def __init__(self) -> None:
        self.free_percent = 100.0
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.instance = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self) -> str:
        fs = 'device="/dev/sda1",fstype="ext4",mountpoint="/var/log"'
        avail = int(self.SIZE * self.free_percent / 100)
        return (
            f"node_filesystem_avail_bytes{{{fs}}} {avail}\n"
            f"node_filesystem_size_bytes{{{fs}}} {self.SIZE}\n"
            f"node_filesystem_readonly{{{fs}}} 0\n"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Monitoring:
    """Prometheus + Alertmanager processes, configured in ``workdir``."""

    def __init__(
        self,
        binaries: tuple[Path, Path],
        workdir: Path,
        *,
        target: str,
        webhook: str,
        token: str,
        instance: str | None = None,
        alertname: str | None = None,
    ) -> None:
        """``instance``: the instance label of the target (relabelled, as a host name:port in real
        setups); ``alertname``: the community rule's alert renamed (so only one session's rules react)."""
        self.workdir = workdir
        self.prometheus_port, self.alertmanager_port = free_port(), free_port()
        rules = workdir / "rules.yml"
        text = RULES.read_text().replace("for: 2m", "for: 0s")
        if alertname is not None:
            text = text.replace("alert: HostOutOfDiskSpace", f"alert: {alertname}")
        rules.write_text(text)
        scrape: dict[str, Any] = {"job_name": "node", "static_configs": [{"targets": [target]}]}
        if instance is not None:
            scrape["relabel_configs"] = [{"target_label": "instance", "replacement": instance}]
        (workdir / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{self.alertmanager_port}"]}]}
                        ]
                    },
                    "scrape_configs": [scrape],
                }
            )
        )
        (workdir / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "whale",
                        "group_by": ["alertname", "instance"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "2s",  # re-sends carry the alert's current annotations
                    },
                    "receivers": [
                        {
                            "name": "whale",
                            "webhook_configs": [
                                {
                                    "url": webhook,
                                    "send_resolved": True,
                                    "http_config": {
                                        "authorization": {"type": "Bearer", "credentials": token}
                                    },
                                }
                            ],
                        }
                    ],
                }
            )
        )
        self._binaries = binaries
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        prometheus, alertmanager = self._binaries
        self._spawn(
            "alertmanager",
            [
                str(alertmanager),
                f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
                "--cluster.listen-address=",  # no HA gossip port
                "--log.level=warn",
            ],
        )
        self._spawn(
            "prometheus",
            [
                str(prometheus),
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
        )
        for port in (self.alertmanager_port, self.prometheus_port):
            self._wait_ready(port)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self._procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir))

    def _wait_ready(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited {proc.returncode}: {self.logs()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"127.0.0.1:{port} not ready within {timeout}s: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
