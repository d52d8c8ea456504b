"""Running a service: signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable


def install_stop_handlers(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM and SIGINT (graceful shutdown: finish, commit, leave the group)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``main(stop_event)`` until it returns; SIGTERM/SIGINT set the event."""

    async def runner() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0
