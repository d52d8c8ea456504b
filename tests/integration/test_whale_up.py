"""``whale up`` as a user runs it (``make run``): ready, the shipped disk alert handled, Ctrl-C, nothing left.

The test starts the real ``python -m whale up`` and waits for its "Whale is ready." banner (printed once
the event center answers and the example schemas are registered), posts the shipped Alertmanager
payload to the adapters' ``/alertmanager`` (as the banner says), waits for the WeCom robot stand-in's
``robot | ...`` lines in whale up's output and checks that the old logs of the demo host are gone,
then sends SIGINT to whale up and checks that every process it started, and every process group they
made, has ended. whale up starts with SIGINT ignored, as a background job of a script inherits it.

As on a fresh machine, whale up starts a Kafka and an Elasticsearch of its own (free ports, a data
directory of this test's own: never the suite's stack, whose topics hold every other test's events, nor
what a ``make run`` on the same machine uses) and stops them on SIGINT; every service and the robot
stand-in get a free port; the demo hosts live in the test's directory (``WHALE_EXAMPLE_DEMO_DIR``).
Only the fingerprint and start time of the shipped alert (node-exporter's community rule, unchanged)
are fresh (the event center drops a re-sent alert); where the host's logs are comes from whale up's
demo inventory (its facts, through enrichment), which names that directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ports import free_port
from whale.infra import process
from whale.infra import stack as infra
from whale.processes import SERVICES
from whale.resources import scenarios_dir

pytestmark = pytest.mark.integration

# Generous: on a loaded 2-core machine eight Python services take minutes to start.
READY_TIMEOUT = 360.0  # whale up started -> "Whale is ready." and every service's /readyz
ALERT_TIMEOUT = 300.0  # alert posted -> the robot's message
# SIGINT -> whale up exited: it gives the services 20 s together, then kills them (5 s), its sshd 10 s,
# then its Kafka and Elasticsearch 30 s (then SIGKILL, 10 s): at most about 80 s, usually under 10
STOP_TIMEOUT = 120.0
OLD_LOGS = 60  # what whale.cli.up.prepare_demo_hosts writes: 60 month-old logs and 20 fresh ones
FRESH_LOGS = [f"app-today-{i:02d}.log" for i in range(20)]


class Output:
    """Every line whale up prints, collected by a thread; ``wait_for`` blocks until one matches."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        try:
            for raw in iter(stream.readline, b""):
                with self._changed:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self._changed.notify_all()
        finally:
            with self._changed:
                self.closed = True
                self._changed.notify_all()

    def wait_for(self, match: Callable[[str], bool], timeout: float, what: str) -> str:
        """The first line (from the start) that matches, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if match(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.closed:
                    raise AssertionError(f"whale up ended before {what}")
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:.0f} s")
                self._changed.wait(min(left, 1.0))

    def deaths(self) -> list[str]:
        """whale up's own lines saying a service died under it (service lines are ``name | ...``)."""
        with self._changed:
            return [line for line in self.lines if re.fullmatch(r"[a-z-]+ exited with code -?\d+", line)]

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def tail(self, count: int = 200) -> str:
        with self._changed:
            return "\n".join(self.lines[-count:])


@dataclass(frozen=True, slots=True)
class Proc:
    """A process seen in /proc; ``start`` (clock ticks after boot) tells it apart from a reused pid."""

    pid: int
    ppid: int
    pgid: int
    start: int
    state: str


def _stat(pid: int) -> Proc | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # fields 3.. of proc(5); the name may hold spaces
    return Proc(pid, ppid=int(fields[1]), pgid=int(fields[2]), start=int(fields[19]), state=fields[0])


def _all() -> list[Proc]:
    found = (_stat(int(name)) for name in os.listdir("/proc") if name.isdigit())
    return [p for p in found if p is not None]


def _descendants(root: int) -> list[Proc]:
    table = _all()
    family, found = {root}, []
    grew = True
    while grew:
        grew = False
        for p in table:
            if p.ppid in family and p.pid not in family:
                family.add(p.pid)
                found.append(p)
                grew = True
    return found


def _alive(p: Proc) -> bool:
    return process.start_ticks(p.pid) == p.start  # None for a zombie or a finished process


def _kill(p: Proc) -> None:
    """SIGKILL a leftover process and its group (never the group pytest runs in)."""
    try:
        if p.pgid != os.getpgid(0):
            os.killpg(p.pgid, signal.SIGKILL)
        os.kill(p.pid, signal.SIGKILL)
    except OSError:
        pass


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def _service_of(pid: int) -> str | None:
    """``name`` when the process is ``python -m whale run <name> ...``."""
    args = _cmdline(pid)
    for i in range(len(args) - 3):
        if args[i : i + 3] == ["-m", "whale", "run"]:
            return args[i + 3]
    return None


def _wait_ready(url: str, deadline: float) -> None:
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}/readyz did not answer 200")
        time.sleep(1)


def _alert() -> dict[str, Any]:
    """The shipped disk alert with a fresh fingerprint and start time."""
    alert: dict[str, Any] = json.loads((scenarios_dir() / "payloads" / "disk-alert.json").read_text())
    for item in alert["alerts"]:
        item["fingerprint"] = uuid.uuid4().hex[:16]
        item["startsAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return alert


# whale up's own Kafka and Elasticsearch (the suite's stack is named by these; whale up must not see them)
SUITE_STACK = ("WHALE_KAFKA_BOOTSTRAP", "WHALE_ES_URL")
INFRA_PORTS = (
    "WHALE_INFRA_KAFKA_PORT",
    "WHALE_INFRA_KAFKA_CONTROLLER_PORT",
    "WHALE_INFRA_ES_PORT",
    "WHALE_INFRA_ES_TRANSPORT_PORT",
)


def _environment(demo: Path) -> dict[str, str]:
    drop = {"WHALE_EXAMPLE_WECOM_WEBHOOK", *SUITE_STACK}  # the robot stand-in; whale up's own stack
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({name: str(free_port()) for name in INFRA_PORTS})
    env["WHALE_INFRA_DATA_DIR"] = str(demo / "infra")
    env["WHALE_STATE_DIR"] = str(demo / "state")
    env.update({s.port_env: str(free_port()) for s in SERVICES.values()})
    env["WHALE_EXAMPLE_ROBOT_PORT"] = str(free_port())
    env["WHALE_EXAMPLE_DEMO_DIR"] = str(demo)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.timeout(1200)
def test_whale_up_handles_the_shipped_disk_alert_and_leaves_no_process_after_sigint() -> None:
    # under /tmp: the scenario's actions only touch /tmp, /var/tmp and /var/log
    demo = Path(tempfile.mkdtemp(prefix="whale-up-test-", dir="/tmp"))
    env = _environment(demo)
    # with SIGINT ignored, as a script's background job (`make test &`) starts it: whale up must
    # stop on SIGINT all the same (it did not, and this test failed whenever the suite ran so)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "whale", "up"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a process group of its own, as a terminal gives `make run`
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    out = Output(proc)
    seen: dict[int, Proc] = {}

    def remember() -> None:
        for p in _descendants(proc.pid):
            seen.setdefault(p.pid, p)

    try:
        out.wait_for(lambda line: line.strip() == "Whale is ready.", READY_TIMEOUT, '"Whale is ready."')
        remember()
        assert not out.deaths()
        # it started a Kafka and an Elasticsearch of its own, so on exit it stops them (checked below)
        for component in infra.COMPONENTS:
            assert [line for line in out.lines if re.match(rf"{component} +\S+ +started\b", line)], component
        services = {_service_of(pid) for pid in seen}
        assert set(SERVICES) <= services, f"whale up runs {services}, not every service"
        # the banner waits for the event center only; the alert must find every stage listening
        deadline = time.monotonic() + READY_TIMEOUT
        for s in SERVICES.values():
            _wait_ready(f"http://127.0.0.1:{env[s.port_env]}", deadline)

        logs = demo / "vm-web-01" / "log"
        assert len(list(logs.glob("app-[0-9][0-9].log.gz"))) == OLD_LOGS
        host = (
            "vm-web-01"  # the shipped alert's host, which the demo inventory holds (its actions run over SSH)
        )
        answer = httpx.post(
            f"http://127.0.0.1:{env['WHALE_ADAPTERS_PORT']}/alertmanager", json=_alert(), timeout=30
        )
        assert answer.status_code == 202, answer.text

        def robot(text: str) -> Callable[[str], bool]:
            return lambda line: line.startswith("robot ") and text in line

        out.wait_for(robot(f"Disk cleanup on {host}"), ALERT_TIMEOUT, f"robot message about {host}")
        out.wait_for(robot(f"old files removed: {OLD_LOGS}"), 30, "robot line with the removed count")
        out.wait_for(robot("Back under the threshold."), 30, "robot line saying the disk is fine")
        assert sorted(p.name for p in logs.iterdir()) == FRESH_LOGS
        remember()

        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C; whale up itself must stop every service
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
        out.join(timeout=30)
        assert not out.deaths()
        # it said how the services ended and how long the whole stop took
        assert [line for line in out.lines if re.fullmatch(r"\d+ services stopped in [\d.]+ s.*", line)]
        assert [line for line in out.lines if re.fullmatch(r"Whale stopped in [\d.]+ s\.", line)]

        left = [(p.pid, _service_of(p.pid), _cmdline(p.pid)) for p in seen.values() if _alive(p)]
        assert not left, f"processes left behind: {left}"
        groups = {proc.pid} | {p.pgid for p in seen.values()}
        stray = [(p.pid, p.pgid, _cmdline(p.pid)) for p in _all() if p.pgid in groups and p.state != "Z"]
        assert not stray, f"processes left in whale up's process groups: {stray}"
        assert not [g for g in groups if process.group_alive(g)]
    except BaseException:
        print(f"--- whale up's output (last lines) ---\n{out.tail()}")
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for p in seen.values():
            if _alive(p):
                _kill(p)
        shutil.rmtree(demo, ignore_errors=True)
