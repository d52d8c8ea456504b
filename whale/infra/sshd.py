"""A throw-away OpenSSH server on a loopback port: the hosts of the SSH tests (and of demos).

Runs Debian's ``/usr/sbin/sshd`` (installed by ``deploy/tools/install-sshd.sh`` when missing and we
are root) in the foreground as the current user, with a host key, a client key and its
``authorized_keys`` generated into a directory of its own. It accepts only that client key, only for
the current user (root logs in with the key only), and writes nothing outside its directory.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import yaml

from whale.errors import InfraError
from whale.infra.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "deploy" / "tools" / "install-sshd.sh"


def install_sshd() -> Path:
    """``sshd``: ``$WHALE_SSHD``, ``/usr/sbin/sshd``, or installed by install-sshd.sh."""
    present = Path(os.environ.get("WHALE_SSHD", "/usr/sbin/sshd"))
    if os.access(present, os.X_OK):
        return present
    if not INSTALL_SCRIPT.is_file():  # an installed package, not a checkout
        raise InfraError(
            f"{present} not found; install OpenSSH's server (Debian: apt-get install openssh-server)"
        )
    proc = subprocess.run(
        ["/bin/sh", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode != 0:
        raise InfraError(f"{INSTALL_SCRIPT} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class LocalSshd:
    """One sshd on 127.0.0.1:``port`` whose files live in ``directory``."""

    directory: Path
    port: int
    user: str = field(default_factory=getpass.getuser)
    max_sessions: int = 64
    forwarding: bool = False  # lets clients tunnel through it (a jump host)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.directory / "host_ed25519"

    @property
    def client_key(self) -> Path:
        """The private key the server accepts (``authorized_keys``)."""
        return self.directory / "client_ed25519"

    @property
    def known_hosts_line(self) -> str:
        """The line a client's known_hosts needs to trust this server."""
        algorithm, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {algorithm} {blob}\n"

    def start(self, sshd: Path | None = None, timeout: float = 20.0) -> LocalSshd:
        binary = sshd or install_sshd()
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in (self.host_key, self.client_key):
            if not path.exists():
                key = asyncssh.generate_private_key("ssh-ed25519")
                key.write_private_key(str(path))
                path.chmod(0o600)
                key.write_public_key(str(path.with_suffix(".pub")))
        (self.directory / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        config = self.directory / "sshd_config"
        config.write_text(self.config())
        if os.geteuid() == 0:  # privilege separation needs its empty directory
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = (self.directory / "sshd.log").open("ab")
        self.proc = subprocess.Popen(
            [str(binary), "-D", "-e", "-f", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise InfraError(f"sshd did not start: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def config(self) -> str:
        d = self.directory
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}",
            f"AllowUsers {self.user}",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "X11Forwarding no",
            f"AllowTcpForwarding {'local' if self.forwarding else 'no'}",
            "PrintMotd no",
            f"MaxSessions {self.max_sessions}",
            "MaxStartups 100",
            "LogLevel ERROR",
            # bash sources the user's ~/.bashrc when sshd starts it, at SHLVL 0 only: this server's
            # sessions skip it (a pyenv or conda init there costs ~0.5 s of CPU per session)
            "SetEnv SHLVL=1",
        ]
        return "\n".join(lines) + "\n"

    def client_settings(
        self, names: Iterable[str], facts: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, str]:
        """An inventory naming each of ``names`` as this server (with its ``facts``, if any) and a
        known_hosts trusting it, written into the server's directory; the executor settings
        (``WHALE_EXECUTOR_*``, which enrichment reads too) that use them."""
        inventory = self.directory / "inventory.yaml"
        facts = facts or {}
        hosts: dict[str, Any] = {}
        for name in names:
            hosts[name] = {"address": "127.0.0.1", "port": self.port}
            if name in facts:
                hosts[name]["facts"] = dict(facts[name])
        doc = {"defaults": {"user": self.user, "key": f"file:{self.client_key}"}, "hosts": hosts}
        inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        known_hosts = self.directory / "known_hosts"
        known_hosts.write_text(self.known_hosts_line)
        return {
            "WHALE_EXECUTOR_INVENTORY": json.dumps([str(inventory)]),
            "WHALE_EXECUTOR_SSH_KNOWN_HOSTS": str(known_hosts),
        }

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "sshd.log").read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_demo_hosts(
    directory: Path,
    names: Iterable[str],
    env: dict[str, str],
    facts: Mapping[str, Mapping[str, Any]] | None = None,
) -> LocalSshd | None:
    """``whale up``'s demo hosts: ``names`` in an inventory (with their ``facts``), all served by one
    local sshd (their directories under the demo directory stand for their disks); ``env`` gets the
    executor settings unless the user configured an inventory of their own. None (with a message) if
    sshd is missing."""
    if "WHALE_EXECUTOR_INVENTORY" in env:
        return None
    try:
        server = LocalSshd(directory, free_port()).start()
    except InfraError as exc:
        print(f"demo hosts: no local sshd, the scenarios' SSH actions will fail: {exc}", flush=True)
        return None
    env.update(server.client_settings(names, facts))
    return server


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
