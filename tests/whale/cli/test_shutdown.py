"""``whale up``'s stop of its services: SIGTERM to all at once, one deadline, then SIGKILL by group.

Tiny real processes stand in for the services: one that exits on SIGTERM, ones that ignore it (and
start a child that ignores it too, in their process group), one that already ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from whale.cli.shutdown import Stopped, kill_infra, stop_services, summary
from whale.infra.process import ProcessRecord, StateFile, group_alive, start_ticks
from whale.settings import WhaleSettings

# each prints "ready <pid of its child, if any>" once its signal dispositions are set
EXITS_ON_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
IGNORES_SIGTERM = (
    "import signal, subprocess, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen(['sleep', '60'])  # inherits the ignored SIGTERM\n"
    "print('ready', child.pid, flush=True)\n"
    "time.sleep(60)\n"
)
LEAVES_A_CHILD = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen(['sleep', '60'])  # ignores SIGTERM: outlives its parent\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "print('ready', child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


class Started:
    """The stand-in services of one test; whatever is left is killed afterwards."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.children: dict[str, int] = {}

    def start(self, name: str, code: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, process_group=0, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[:1] == [b"ready"], ready
        if len(ready) > 1:
            self.children[name] = int(ready[1])
        self.procs[name] = proc
        return proc

    def cleanup(self) -> None:
        for proc in self.procs.values():
            if group_alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.stdout is not None
            proc.stdout.close()


@pytest.fixture
def started() -> Iterator[Started]:
    family = Started()
    yield family
    family.cleanup()


def _by_name(ended: list[Stopped]) -> dict[str, Stopped]:
    return {s.name: s for s in ended}


def test_a_service_that_exits_on_sigterm_ends_by_itself(started: Started) -> None:
    started.start("quick", EXITS_ON_SIGTERM)
    said: list[str] = []

    ended = _by_name(stop_services(started.procs, grace=30, say=said.append))

    assert ended["quick"].killed is False
    assert ended["quick"].code == 3  # its own SIGTERM handler ran: its graceful stop is untouched
    assert ended["quick"].seconds < 30
    assert not said


def test_services_ignoring_sigterm_are_killed_with_their_groups_at_one_deadline(started: Started) -> None:
    for name in ("stubborn-a", "stubborn-b"):
        started.start(name, IGNORES_SIGTERM)
    started.start("quick", EXITS_ON_SIGTERM)
    said: list[str] = []
    grace = 2.0

    ended = _by_name(stop_services(started.procs, grace=grace, say=said.append))

    for name in ("stubborn-a", "stubborn-b"):
        assert ended[name].killed is True
        assert ended[name].code == -signal.SIGKILL
        assert grace <= ended[name].seconds < 2 * grace  # one deadline for all, not one each in turn
        assert any(line.startswith(f"{name} (pid ") and "killing" in line for line in said), said
        assert start_ticks(started.children[name]) is None  # its child (same group) died with it
        assert not group_alive(started.procs[name].pid)
    assert ended["quick"].killed is False


def test_a_slow_service_is_named_while_it_is_waited_for(
    started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("whale.cli.shutdown.SLOW_AFTER", 0.2)
    started.start("stubborn", IGNORES_SIGTERM)
    said: list[str] = []

    stop_services(started.procs, grace=1.0, say=said.append)

    assert said[0].startswith("still stopping: stubborn ("), said


def test_hurry_kills_at_once_without_waiting_for_the_deadline(started: Started) -> None:
    started.start("stubborn", IGNORES_SIGTERM)
    hurry = threading.Event()
    said: list[str] = []
    threading.Timer(0.3, hurry.set).start()  # the second Ctrl-C

    ended = _by_name(stop_services(started.procs, grace=600, hurry=hurry, say=said.append))

    assert ended["stubborn"].killed is True
    assert ended["stubborn"].seconds < 600
    assert "on the second Ctrl-C" in said[-1]


def test_what_a_service_left_in_its_group_is_killed_after_it_exits(started: Started) -> None:
    started.start("leaky", LEAVES_A_CHILD)

    ended = _by_name(stop_services(started.procs, grace=30, say=lambda _: None))

    assert ended["leaky"].killed is False
    deadline = time.monotonic() + 10
    while start_ticks(started.children["leaky"]) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert start_ticks(started.children["leaky"]) is None


def test_a_service_that_had_already_ended_is_reported_and_not_signalled(started: Started) -> None:
    proc = started.start("gone", EXITS_ON_SIGTERM)
    proc.terminate()
    proc.wait(timeout=10)

    ended = stop_services(started.procs, grace=30, say=lambda _: None)

    assert ended == [Stopped("gone", 0.0, killed=False, code=3)]


def test_summary_names_the_slowest_and_the_killed() -> None:
    ended = [Stopped("todo", 0.5, False, 0), Stopped("rule-engine", 20.0, True, -9)]
    assert summary(ended, 20.3) == "2 services stopped in 20.3 s; killed: rule-engine"
    assert summary(ended[:1], 0.6) == "1 service stopped in 0.6 s (slowest: todo, 0.5 s)"


def test_kill_infra_kills_only_the_recorded_process_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHALE_INFRA_DATA_DIR", str(tmp_path))
    kafka = subprocess.Popen(["sleep", "60"], start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state = StateFile(tmp_path)

        def record(proc: subprocess.Popen[bytes], ticks: int | None) -> ProcessRecord:
            return ProcessRecord(proc.pid, proc.pid, ticks, "127.0.0.1:1", "1", "log", time.time())

        state.put("kafka", record(kafka, start_ticks(kafka.pid)))
        # a record whose pid now belongs to another process (a different start time): never signalled
        state.put("elasticsearch", record(other, (start_ticks(other.pid) or 0) + 1))

        kill_infra(WhaleSettings(), ["kafka", "elasticsearch"])

        assert kafka.wait(timeout=10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for proc in (kafka, other):
            proc.kill()
            proc.wait(timeout=10)


def test_ctrl_c_interrupts_even_when_the_process_was_started_with_sigint_ignored() -> None:
    # a shell without job control starts background jobs with SIGINT ignored (``make test &`` in a
    # script); whale up inherited that and never stopped on the test's SIGINT
    code = (
        "import signal, time\n"
        "from whale.cli.shutdown import take_ctrl_c\n"
        "inherited = signal.getsignal(signal.SIGINT)\n"
        "take_ctrl_c()\n"
        "try:\n"
        "    print('ready', inherited == signal.SIG_IGN, flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    script = f'{sys.executable} -c "$1" & echo $!; wait'  # a background job of a non-interactive shell
    shell = subprocess.Popen(["/bin/sh", "-c", script, "sh", code], stdout=subprocess.PIPE, text=True)
    assert shell.stdout is not None
    job = int(shell.stdout.readline())
    try:
        assert shell.stdout.readline().split() == ["ready", "True"]  # SIGINT came in ignored
        os.kill(job, signal.SIGINT)
        assert shell.stdout.readline().strip() == "interrupted"
        assert shell.wait(timeout=30) == 0
    finally:
        for pid in (job, shell.pid):
            if start_ticks(pid) is not None:
                os.kill(pid, signal.SIGKILL)
        shell.wait(timeout=10)
        shell.stdout.close()
