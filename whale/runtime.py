"""Running a service: signals, graceful shutdown, periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import structlog

from whale.eventloop import EventLoop, loop_factory

log = structlog.get_logger(__name__)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_handlers(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM and SIGINT (graceful shutdown: finish, commit, leave the group)."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)


def run(main: Callable[[asyncio.Event], Awaitable[None]], loop: EventLoop) -> int:
    """Run ``main(stop_event)`` on a new ``loop`` (``WhaleSettings.event_loop``, see
    :mod:`whale.eventloop`) until it returns; SIGTERM/SIGINT set the event."""

    async def runner() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop.set)
        try:
            await main(stop)
        finally:  # uvloop keeps its handlers after close: a later loop or signal would reach a closed one
            for sig in STOP_SIGNALS:
                asyncio.get_running_loop().remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner_:
        runner_.run(runner())
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
