"""The event loop and HTTP parser Whale's processes run on: uvloop and httptools, with a safe fallback.

``WHALE_EVENT_LOOP`` (``uvloop`` | ``asyncio``, default ``uvloop``) and ``WHALE_HTTP_PARSER``
(``httptools`` | ``h11``, default ``httptools``) are validated when a service builds its settings
(an unknown value stops it with the field named). A chosen implementation that is not installed
(e.g. uvloop on Windows) is logged once as ``event_loop_fallback`` / ``http_parser_fallback`` and the
standard one is used, so an installation without them still starts.

Every long-running process creates its loop here: :func:`whale.runtime.run` through
:func:`loop_factory`, uvicorn through :func:`uvicorn_options`, the rule engine's Faust worker
through :func:`install_policy`. Short CLI commands keep ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
from collections.abc import Callable
from typing import Literal, TypedDict

import structlog

log = structlog.get_logger(__name__)

EventLoop = Literal["uvloop", "asyncio"]
HttpParser = Literal["httptools", "h11"]


class UvicornOptions(TypedDict):
    loop: EventLoop
    http: HttpParser


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@functools.cache
def event_loop(choice: EventLoop) -> EventLoop:
    """The loop that runs: ``choice``, or ``asyncio`` when uvloop is chosen but not installed."""
    if choice == "uvloop" and not _installed("uvloop"):
        log.warning("event_loop_fallback", chosen="uvloop", using="asyncio", reason="uvloop is not installed")
        return "asyncio"
    return choice


@functools.cache
def http_parser(choice: HttpParser) -> HttpParser:
    """The parser uvicorn uses: ``choice``, or ``h11`` when httptools is chosen but not installed."""
    if choice == "httptools" and not _installed("httptools"):
        log.warning(
            "http_parser_fallback", chosen="httptools", using="h11", reason="httptools is not installed"
        )
        return "h11"
    return choice


def loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop function for :class:`asyncio.Runner` (``asyncio.run`` has no factory on 3.11)."""
    if event_loop(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def uvicorn_options(loop: EventLoop, http: HttpParser) -> UvicornOptions:
    """``loop=`` and ``http=`` for ``uvicorn.Config``: the settings' choices, after the fallback."""
    return {"loop": event_loop(loop), "http": http_parser(http)}


def install_policy(choice: EventLoop) -> None:
    """Make loops created later (``asyncio.get_event_loop``, as Faust's worker does) of ``choice``."""
    if event_loop(choice) == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
