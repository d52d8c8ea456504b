"""SSH actions per second against the real OpenSSH server (``whale.infra.sshd``: Debian's sshd on a
loopback port), against one inventory host and spread over 20 inventory aliases of that server, with
connection reuse on (one connection per host, sessions multiplexed) and off (a TCP connection, key
exchange and login per action).

The executor's SSH path runs in this process (:class:`whale_executor.actions.ssh.SshAction` over a
:class:`whale_executor.sshconn.Connections`, as the executor binds them; no Kafka, whose cost is in
``bench_executor``): ``CONCURRENCY`` actions at once (the executor's default), at most ``PER_HOST``
sessions per host (the default ``SSH_PER_HOST``). Each action runs ``echo ok`` (plus the process
group marker every SSH action sends). CPU seconds come from ``/proc``: this process's own
(``/proc/self/stat``) and sshd's (the listener plus every per-connection child it reaped,
``/proc/<pid>/stat`` utime+stime+cutime+cstime), per action.

Run alone with ``python -m benchmarks.bench_ssh`` (``WHALE_BENCH_SSH_ACTIONS`` scales the counts).
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

TITLE = "SSH actions per second (real sshd on loopback), one host and 20 aliases, reuse on/off"
SCALE = float(os.environ.get("WHALE_BENCH_SSH_ACTIONS", "1"))
CONCURRENCY = 16
PER_HOST = 4
ALIASES = 20
TICK = os.sysconf("SC_CLK_TCK")
CTX_KW: dict[str, Any] = {"request_id": "bench", "idempotency_key": "bench", "pool": "bench"}


def proc_cpu(pid: int | str, children: bool = False) -> float:
    """CPU seconds of a process from ``/proc/<pid>/stat`` (with its reaped children's if asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def sshd_cpu(pid: int) -> float:
    """The sshd listener's CPU with its reaped children's, plus its live children's own."""
    total = proc_cpu(pid, children=True)
    for task in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = task.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # ppid
                total += proc_cpu(task.parent.name, children=True)
        except (OSError, ValueError, IndexError):
            continue
    return total


async def measure(sshd: Any, hosts: list[str], reuse: bool, actions: int) -> dict[str, object]:
    from whale_executor.actions.base import ActionContext
    from whale_executor.actions.ssh import SshAction, SshRuntime
    from whale_executor.sshconn import Connections

    from whale.inventory import Host, Inventory

    def host(name: str) -> Host:
        return Host(
            name=name, address="127.0.0.1", port=sshd.port, user=sshd.user, key=f"file:{sshd.client_key}"
        )

    known = sshd.directory / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    conns = Connections(known_hosts=known, per_host=PER_HOST, reuse=reuse)
    runtime = SshRuntime(inventory=Inventory([host(n) for n in hosts]), connections=conns)
    action = SshAction(
        {"kind": "ssh", "name": "bench.echo", "host": "{{ params.host }}", "argv": ["echo", "ok"]},
        source=str(sshd.directory / "bench.yaml"),
    )
    action.bind(runtime)
    ctx = ActionContext(**CTX_KW)
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with slots:
            out = await action.run({"host": hosts[i % len(hosts)]}, ctx)
            assert out["stdout"] == "ok\n", out

    await asyncio.gather(*(one(i) for i in range(min(CONCURRENCY, actions))))  # warm: connect, caches
    opened_before = conns.opened
    assert sshd.proc is not None
    cpu0, sshd0, t0 = proc_cpu("self"), sshd_cpu(sshd.proc.pid), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(actions)))
    elapsed = time.perf_counter() - t0
    cpu, server = proc_cpu("self") - cpu0, sshd_cpu(sshd.proc.pid) - sshd0
    opened = conns.opened - opened_before
    await conns.close()
    return {
        "target": "1 host" if len(hosts) == 1 else f"{len(hosts)} aliases",
        "reuse": "on" if reuse else "off",
        "actions": actions,
        "actions/s": actions / elapsed,
        "client CPU ms/action": 1000 * cpu / actions,
        "sshd CPU ms/action": 1000 * server / actions,
        "connections opened": opened,
    }


def run() -> list[dict[str, object]]:
    from whale.infra.sshd import LocalSshd

    with tempfile.TemporaryDirectory(prefix="whale-bench-ssh-") as tmp:
        sshd = LocalSshd(Path(tmp), _free_port(), max_sessions=64).start()
        try:
            rows = []
            for hosts in (["h-00"], [f"h-{i:02d}" for i in range(ALIASES)]):
                for reuse, count in ((True, 600), (False, 120)):
                    rows.append(asyncio.run(measure(sshd, hosts, reuse, max(20, round(count * SCALE)))))
            return rows
        finally:
            sshd.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    import benchmarks

    print(benchmarks.format_table(TITLE, run()))
