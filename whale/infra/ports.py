"""Ports for local servers (the demo sshd, test and benchmark servers): free now, outside the ephemeral range, never repeated.

A port taken from the kernel's ephemeral range (``bind(0)``) can be handed to an outgoing
connection, say a Kafka client's, before the service under test binds it; and two ``bind(0)``
calls may return the same port. So ports come from below the ephemeral range, are checked to be
free, and are handed out once per process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_GIVEN: set[int] = set()
_LOW = 20000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on and that this process has not handed out."""
    high = max(_ephemeral_start(), _LOW + 1000)
    while True:
        port = random.randrange(_LOW, high)  # noqa: S311 (a port number, not a secret)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
