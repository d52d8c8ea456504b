"""Numbered slots under a directory, each held by one live process with an exclusive ``flock``.

Several processes on one machine (tests, or replicas sharing a disk) must never share a RocksDB:
each claims the first free ``base/0``, ``base/1``, ... (:func:`claim_slot`) and keeps its lock
until it releases the slot or exits, so a restarted process finds its previous slot free again.
Used by the local stores (:mod:`whale.store`) and the rule engine's Faust data directory.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class Slot:
    """A directory this process holds an exclusive ``flock`` on (until :meth:`release` or exit)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def claim_slot(base: Path, limit: int = 64) -> Slot:
    """The first of ``base/0``, ``base/1``, ... that no live process holds."""
    for n in range(limit):
        path = base / str(n)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / ".claim", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return Slot(path, fd)
    raise RuntimeError(f"all {limit} slots of {base} are held by other processes")
