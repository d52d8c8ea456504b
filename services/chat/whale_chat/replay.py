"""A signed callback is accepted once: signatures seen within the timestamp window are refused."""

from __future__ import annotations

import threading
import time


class ReplayGuard:
    """Remembers each accepted signature until its timestamp leaves the window (per process)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float | None = None) -> bool:
        """True the first time ``signature`` is offered within the window, False on a repeat."""
        now = time.time() if now is None else now
        with self._lock:
            if len(self._seen) > 1000:
                self._seen = {s: t for s, t in self._seen.items() if t > now}
            expires = self._seen.get(signature)
            if expires is not None and expires > now:
                return False
            self._seen[signature] = now + 2 * self.window
            return True
