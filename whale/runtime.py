"""Running a service: signals, graceful shutdown, periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


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


async def every(seconds: float, job: Callable[[], Awaitable[object]], stop: asyncio.Event, name: str) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop`` is set (a periodic sweep). A job that
    raises is logged as ``<name>_failed`` and runs again next time (e.g. Kafka was unavailable)."""
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:
            log.warning(f"{name}_failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
