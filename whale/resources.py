"""Data files shipped inside the ``whale`` package, found the same way in a checkout and a wheel.

``whale/event_schemas`` (the JSON Schemas of Whale's own event types, ``schemas/events`` of the
repository) and ``whale/scenarios`` (the shipped scenarios, ``examples/scenarios``) are links in a
checkout and real directories in a built wheel (package data), so nothing at run time reads a path
relative to the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _packaged(name: str) -> Path:
    return Path(str(files("whale") / name))


def event_schemas_dir() -> Path:
    """The JSON Schemas of Whale's own event types (``whale.*``, ``prometheus.alert.*``)."""
    return _packaged("event_schemas")


def scenarios_dir() -> Path:
    """The shipped scenarios: rules, catalogue, event schemas and sample payloads (``whale up`` loads them)."""
    return _packaged("scenarios")
