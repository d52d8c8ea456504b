"""structlog, configured once per process: JSON when stderr is not a terminal.

Log keys used across Whale are declared here so every service spells them the same way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import structlog

from whale.correlation import Cause
from whale.settings import WhaleSettings

EVENT_ID = "event_id"
EVENT_TYPE = "event_type"
EVENT_SOURCE = "event_source"
CORRELATION_ID = "correlation_id"
SERVICE = "service"

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_SECRET_KEYS = ("password", "secret", "token", "authorization", "api_key", "apikey")


def _redact(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Never print a value whose key names a secret."""
    for key in list(event_dict):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event_dict[key] = "***"
    return event_dict


def scrubbing(scrub: Callable[[str], str]) -> structlog.types.Processor:
    """A processor passing every string value of a log line through ``scrub`` (e.g. the executor's
    secret scrubber, so a resolved secret never reaches a log line in any representation)."""

    def process(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = scrub(value)
        return event_dict

    return process


def configure_logging(
    settings: WhaleSettings, *, service: str, scrub: Callable[[str], str] | None = None
) -> None:
    """Set up structlog and the standard library logging bridge for this process; ``scrub``, when
    given, hides secrets in every string value of every line.

    Libraries that log through the standard library (librdkafka, aiokafka, Faust, uvicorn) are rendered
    by the same processors as Whale's own lines, at warning and above: their info lines (Faust's
    tables of partitions and offsets, for one) are not Whale's and would drown them.
    """
    level = _LEVELS[settings.log_level]
    json_output = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    scrubbers = [scrubbing(scrub)] if scrub is not None else []
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, *scrubbers, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**{SERVICE: service})
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *scrubbers, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.WARNING))


def library_logging() -> tuple[dict[str, object], list[logging.Handler]]:
    """What a library that configures logging itself (Faust's worker) gets, so it keeps Whale's format.

    Returns a ``logging.config.dictConfig`` that leaves loggers alone and the root handlers that
    :func:`configure_logging` installed, to be attached again after the library cleared them.
    """
    root = logging.getLogger()
    config: dict[str, object] = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": logging.getLevelName(root.level), "handlers": []},
    }
    return config, list(root.handlers)


class Described(Cause, Protocol):
    """What :func:`bound_event` reads of an event (a :class:`whale.cloudevent.CloudEvent` or a
    lighter form of one)."""

    @property
    def type(self) -> str: ...

    @property
    def source(self) -> str: ...


@contextmanager
def bound_event(event: Described) -> Iterator[None]:
    """Bind the event's id, type, source and correlation id to every log line inside the block."""
    correlation = event.extensions.get("correlationid", event.id)
    tokens = structlog.contextvars.bind_contextvars(
        **{
            EVENT_ID: event.id,
            EVENT_TYPE: event.type,
            EVENT_SOURCE: event.source,
            CORRELATION_ID: correlation,
        }
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
