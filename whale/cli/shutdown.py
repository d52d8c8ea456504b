"""How ``whale up`` stops its services: all at once, one deadline, then SIGKILL, each by name.

Every service runs as the leader of a process group of its own, so a signal to the group reaches
whatever the service started too. :func:`stop_services` sends SIGTERM to every group at once and waits
for all of them together until one deadline (``grace`` seconds after the SIGTERM); a service still
running then is named and killed with its group (SIGKILL). ``hurry`` (a second Ctrl-C) ends the wait
at once. The services' own graceful stop (finish what is in flight, commit offsets, leave the
consumer group) is untouched: only how long ``whale up`` waits for it is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from whale.errors import InfraError
from whale.infra.process import StateFile, group_alive, start_ticks
from whale.infra.settings import InfraSettings
from whale.settings import WhaleSettings

GRACE = 20.0  # seconds from SIGTERM to SIGKILL (``whale up --stop-timeout``)
SLOW_AFTER = 5.0  # seconds: then the services still stopping are named
KILL_WAIT = 5.0  # seconds the killed services may take, together, to be reaped

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Stopped:
    """How one service ended: ``seconds`` from the SIGTERM until it exited or was killed."""

    name: str
    seconds: float
    killed: bool
    code: int | None


def take_ctrl_c() -> None:
    """Make SIGINT (Ctrl-C) raise KeyboardInterrupt here even if this process was started with SIGINT
    ignored: a shell without job control starts its background jobs so (``make test &`` in a script),
    and Python then leaves SIGINT ignored, so ``whale up`` would never stop on it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads, or to ``proc`` alone if it leads none."""
    if proc.poll() is not None:
        return
    try:
        leads = os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if leads:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)


def stop_services(
    procs: Mapping[str, subprocess.Popen[bytes]],
    grace: float = GRACE,
    *,
    hurry: threading.Event | None = None,
    say: Say = print,
    poll: float = 0.1,
) -> list[Stopped]:
    """SIGTERM every running service's group at once, wait for them together until ``grace`` seconds
    have passed (or ``hurry`` is set), then SIGKILL the groups of those still running, naming them.

    Returns how each service ended, in the order they did. Processes a service left behind in its
    group after it exited are killed too.
    """
    hurry = hurry or threading.Event()
    start = time.monotonic()
    ended: list[Stopped] = []
    pending: dict[str, subprocess.Popen[bytes]] = {}
    for name, proc in procs.items():
        if proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
            pending[name] = proc
        else:
            ended.append(Stopped(name, 0.0, killed=False, code=proc.returncode))
    signalled = dict(pending)
    deadline = start + grace
    named = False
    while True:
        for name, proc in list(pending.items()):
            if proc.poll() is not None:
                ended.append(Stopped(name, time.monotonic() - start, killed=False, code=proc.returncode))
                del pending[name]
        now = time.monotonic()
        if not pending or hurry.is_set() or now >= deadline:
            break
        if not named and now - start >= SLOW_AFTER:
            left = deadline - now
            say(f"still stopping: {', '.join(pending)} (killed in {left:.0f} s; Ctrl-C again to kill now)")
            named = True
        hurry.wait(min(poll, max(deadline - now, 0.0)))
    why = "on the second Ctrl-C" if hurry.is_set() else f"{grace:g} s after SIGTERM"
    for name, proc in pending.items():
        say(f"{name} (pid {proc.pid}) still running {why}: killing it and its process group")
        signal_group(proc, signal.SIGKILL)
    reaped = time.monotonic() + KILL_WAIT
    for name, proc in pending.items():
        seconds = time.monotonic() - start
        try:
            proc.wait(timeout=max(0.0, reaped - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} (pid {proc.pid}) did not end {KILL_WAIT:g} s after SIGKILL")
        ended.append(Stopped(name, seconds, killed=True, code=proc.returncode))
    for proc in signalled.values():
        if group_alive(proc.pid):  # what a service started and left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    return ended


def summary(ended: list[Stopped], seconds: float) -> str:
    """One line for people: how long the services took, and which were killed."""
    killed = [s.name for s in ended if s.killed]
    slowest = max(ended, key=lambda s: s.seconds, default=None)
    line = f"{len(ended)} service{'' if len(ended) == 1 else 's'} stopped in {seconds:.1f} s"
    if slowest is not None and not slowest.killed:
        line += f" (slowest: {slowest.name}, {slowest.seconds:.1f} s)"
    if killed:
        line += f"; killed: {', '.join(killed)}"
    return line


def kill_infra(settings: WhaleSettings, names: Iterable[str]) -> None:
    """SIGKILL the process groups of the stack's components ``names`` (what a second Ctrl-C does to the
    Kafka and Elasticsearch ``whale up`` started). Safe while ``stack.down`` runs: it never reaps."""
    wanted = set(names)
    if not wanted:
        return
    with contextlib.suppress(InfraError):
        records = StateFile(InfraSettings().resolved_data_dir(settings)).read()
        for name, record in records.items():
            ticks = start_ticks(record.pid)
            if name in wanted and ticks is not None and ticks == record.start_ticks:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(record.pgid, signal.SIGKILL)
