"""Processes of the local stack: detached start, identity, stop, ports, logs and the state file.

Every process that ``whale infra`` starts gets its own session (so it outlives the CLI and can be
stopped as a whole process group) and a record in ``<data_dir>/state.json``: its PID, process group
and kernel start time. A record is trusted only while the PID still has that start time, so a PID
reused by an unrelated program is never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from whale.errors import InfraError

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
START_MARKER = "=== whale infra: starting"

# Children spawned by this process, kept so that they are not garbage-collected while running
# (``Popen.__del__`` warns about that) and are reaped when they end.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRecord:
    """What ``down`` needs to find a process this stack started, and nothing it did not start."""

    pid: int
    pgid: int
    start_ticks: int | None
    address: str
    version: str
    log: str
    started_at: float


def start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid`` (``/proc/<pid>/stat`` field 22), None if there is no such process.

    Zombies count as gone. Without ``/proc`` (not Linux) it is 0 for a live process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(record: ProcessRecord) -> bool:
    """Whether the process of ``record`` still runs and is the very process that was recorded."""
    reap(record.pid)
    ticks = start_ticks(record.pid)
    if ticks is None:
        return False
    return record.start_ticks is None or ticks == 0 or ticks == record.start_ticks


def reap(pid: int) -> None:
    """Collect ``pid`` if it is a finished child of this process (so it does not linger as a zombie)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` other than a zombie is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


def stop_group(record: ProcessRecord, grace: float) -> None:
    """SIGTERM the process group of ``record``, then SIGKILL whatever is left after ``grace`` seconds."""
    if not is_alive(record):
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            reap(record.pid)
            if not group_alive(record.pgid):
                return
            time.sleep(0.2)
    raise InfraError(f"process group {record.pgid} did not exit after SIGKILL")


def spawn(
    cmd: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str],
    cwd: Path,
    address: str,
    version: str,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start ``cmd`` in its own session with stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    rotate(log)
    with log.open("ab") as out:
        out.write(f"\n{START_MARKER} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise InfraError(f"cannot start {cmd[0]}: {exc}") from exc
    _children[proc.pid] = proc
    record = ProcessRecord(
        pid=proc.pid,
        pgid=proc.pid,
        start_ticks=start_ticks(proc.pid),
        address=address,
        version=version,
        log=str(log),
        started_at=time.time(),
    )
    return proc, record


def rotate(log: Path, limit: int = 50 * 1024 * 1024) -> None:
    """Move ``log`` to ``log.1`` when it is larger than ``limit`` bytes (checked at each start)."""
    with contextlib.suppress(FileNotFoundError):
        if log.stat().st_size > limit:
            log.replace(log.with_name(log.name + ".1"))


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``path`` written since the last start (empty if there is no file)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    marker = data.rfind(START_MARKER)
    if marker >= 0:
        data = data[marker:].partition("\n")[2]
    return "\n".join(data.splitlines()[-lines:])


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port`` or holds it bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        if sock.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_owner(port: int) -> str | None:
    """``pid N (command)`` of the process listening on TCP ``port``, if ``/proc`` tells (Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {entry.name} ({cmdline.strip()[:80]})"
    return None


class StateFile:
    """``<data_dir>/state.json``: the processes this stack started, by component name."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_FILE

    def read(self) -> dict[str, ProcessRecord]:
        """Every record in the file; a missing or unreadable file means no records."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise InfraError(f"cannot read the stack state file {self.path}: {exc}") from exc
        records: dict[str, ProcessRecord] = {}
        for name, fields in raw.get("processes", {}).items():
            with contextlib.suppress(TypeError):
                records[name] = ProcessRecord(**fields)
        return records

    def write(self, records: Mapping[str, ProcessRecord]) -> None:
        """Replace the file atomically with ``records``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = {"processes": {name: asdict(rec) for name, rec in sorted(records.items())}}
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def put(self, name: str, record: ProcessRecord) -> None:
        """Record that ``name`` runs as ``record``."""
        self.write({**self.read(), name: record})

    def remove(self, name: str) -> None:
        """Forget ``name``."""
        records = self.read()
        if records.pop(name, None) is not None:
            self.write(records)


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir`` so that concurrent ``up``/``down`` calls take turns."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
