"""State file, process identity, stopping whole process groups, ports and log tails."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whale.errors import InfraError
from whale.infra import process


def _record(pid: int, ticks: int | None) -> process.ProcessRecord:
    return process.ProcessRecord(pid, pid, ticks, "127.0.0.1:1", "1.0", "/dev/null", 0.0)


def test_state_file_round_trips_records(tmp_path: Path) -> None:
    state = process.StateFile(tmp_path)
    record = _record(123, 456)
    state.put("kafka", record)
    assert state.read() == {"kafka": record}
    state.remove("kafka")
    assert state.read() == {}


def test_missing_state_file_means_nothing_was_started(tmp_path: Path) -> None:
    assert process.StateFile(tmp_path / "absent").read() == {}


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / process.STATE_FILE).write_text("{not json")
    with pytest.raises(InfraError, match="cannot read the stack state file"):
        process.StateFile(tmp_path).read()


def test_a_live_process_with_its_recorded_start_time_is_alive() -> None:
    pid = os.getpid()
    assert process.is_alive(_record(pid, process.start_ticks(pid)))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_reused_pid_with_another_start_time_is_not_ours() -> None:
    pid = os.getpid()
    ticks = process.start_ticks(pid)
    assert ticks is not None
    assert not process.is_alive(_record(pid, ticks + 1))


def test_a_finished_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not process.is_alive(_record(proc.pid, None))


def test_stop_group_ends_the_process_and_its_children(tmp_path: Path) -> None:
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
    _, record = process.spawn(
        [sys.executable, "-c", script],
        log=tmp_path / "x.log",
        env=os.environ,
        cwd=tmp_path,
        address="a",
        version="1",
    )
    assert os.getpgid(record.pid) == record.pid  # its own session and process group
    while sum(1 for _ in _members(record.pgid)) < 2:
        time.sleep(0.05)
    process.stop_group(record, grace=10)
    assert not process.group_alive(record.pgid)
    assert not process.is_alive(record)


def test_stop_group_uses_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    script = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"
    log = tmp_path / "x.log"
    _, record = process.spawn(
        [sys.executable, "-c", script], log=log, env=os.environ, cwd=tmp_path, address="a", version="1"
    )
    while "ready" not in log.read_text():
        time.sleep(0.05)
    process.stop_group(record, grace=0.5)
    assert not process.group_alive(record.pgid)


def _members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _proc_lists_listener(sock: socket.socket) -> bool:
    """Whether this machine's ``/proc`` maps the socket to its inode (sandboxes such as CI may not)."""
    try:
        link = os.readlink(f"/proc/self/fd/{sock.fileno()}")
        table = Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return False
    inode = link.removeprefix("socket:[").removesuffix("]")
    return any(len(row.split()) > 9 and row.split()[9] == inode for row in table)


def test_a_listening_port_is_in_use_and_its_owner_is_named_where_proc_tells() -> None:
    """The owner is named when ``/proc`` can tell; where it cannot, the answer is None, not a crash."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert process.port_in_use("127.0.0.1", port)
        owner = process.port_owner(port)
        if _proc_lists_listener(sock):
            assert owner is not None and owner.startswith(f"pid {os.getpid()} ")
        else:
            assert owner is None or owner.startswith("pid ")
    assert not process.port_in_use("127.0.0.1", port)


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.tail(log, 3) == "line 97\nline 98\nline 99"
    assert process.tail(tmp_path / "absent.log") == ""


def test_tail_shows_only_what_the_last_start_wrote(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(
        f"old run\n{process.START_MARKER} at 1 ===\nolder crash\n{process.START_MARKER} at 2 ===\nToo small heap\n"
    )
    assert process.tail(log) == "Too small heap"


def test_rotate_moves_a_big_log_aside(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("x" * 100)
    process.rotate(log, limit=10)
    assert not log.exists()
    assert (tmp_path / "x.log.1").read_text() == "x" * 100
