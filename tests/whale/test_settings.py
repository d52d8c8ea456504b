"""One naming scheme for every process's settings: ``port``/``host`` for its HTTP listener,
``offset_reset`` for where a new consumer group starts, durations in seconds (no ``_ms``), and
``structlog.get_logger(__name__)`` for loggers. Former names stay readable from the environment."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from whale.processes import SERVICES
from whale.settings import seconds_from_ms_env

ROOT = Path(__file__).resolve().parents[2]
FORMER = {"health_port", "health_host", "auto_offset_reset"}


def _settings(name: str) -> type[BaseSettings]:
    cls: type[BaseSettings] = importlib.import_module(f"{SERVICES[name].package}.settings").Settings
    return cls


def _fields(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> Iterator[tuple[str, str]]:
    """``(class name, field name)`` of ``model`` and of every settings class nested in it."""
    seen = seen if seen is not None else set()
    if model in seen:
        return
    seen.add(model)
    for field_name, field in model.model_fields.items():
        yield model.__name__, field_name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, seen)


@pytest.mark.parametrize("name", list(SERVICES))
def test_no_setting_is_in_milliseconds_or_uses_a_former_name(name: str) -> None:
    for owner, field in _fields(_settings(name)):
        assert not field.endswith("_ms"), f"{owner}.{field}: durations are seconds"
        assert field not in FORMER, f"{owner}.{field}: use port / host / offset_reset"


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_process_names_its_http_port_port(name: str) -> None:
    assert {"host", "port"} <= set(_settings(name).model_fields)


@pytest.mark.parametrize(
    ("name", "env", "field", "value"),
    [
        ("executor", {"WHALE_EXECUTOR_HEALTH_PORT": "9123"}, "port", 9123),
        ("executor", {"WHALE_EXECUTOR_SESSION_TIMEOUT_MS": "7000"}, "session_timeout", 7.0),
        ("todo", {"WHALE_TODO_HEALTH_PORT": "9124"}, "port", 9124),
        ("dedupe", {"WHALE_EVENT_CENTER_DEDUPE_HEALTH_PORT": "9125"}, "port", 9125),
        ("dedupe", {"WHALE_EVENT_CENTER_DEDUPE_WINDOW_SECONDS": "60"}, "window", 60),
        ("dedupe", {"WHALE_EVENT_CENTER_PRODUCE_TIMEOUT_MS": "2500"}, "produce_timeout", 2.5),
        ("indexer", {"WHALE_EVENT_CENTER_INDEXER_HEALTH_PORT": "9126"}, "port", 9126),
        ("indexer", {"WHALE_EVENT_CENTER_RETENTION_DAYS": "90"}, "retention_days", 90),
        ("event-center", {"WHALE_EVENT_CENTER_PRODUCE_TIMEOUT_MS": "3000"}, "produce_timeout", 3.0),
        ("event-center", {"WHALE_EVENT_CENTER_RETRY_AFTER_SECONDS": "9"}, "retry_after", 9),
        ("rule-engine", {"WHALE_RULE_ENGINE_AUTO_OFFSET_RESET": "earliest"}, "offset_reset", "earliest"),
    ],
)
def test_former_variable_names_are_still_read(
    monkeypatch: pytest.MonkeyPatch, name: str, env: dict[str, str], field: str, value: object
) -> None:
    for key, text in env.items():
        monkeypatch.setenv(key, text)
    assert getattr(_settings(name)(), field) == value


def test_the_new_name_wins_over_a_former_milliseconds_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_EXECUTOR_SESSION_TIMEOUT_MS", "7000")
    monkeypatch.setenv("WHALE_EXECUTOR_SESSION_TIMEOUT", "8")
    assert getattr(_settings("executor")(), "session_timeout") == 8.0  # noqa: B009
    assert seconds_from_ms_env({"session_timeout": 9}, "session_timeout", old_ms_env="X") == {
        "session_timeout": 9
    }


def test_a_former_milliseconds_value_that_is_no_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_EXECUTOR_SESSION_TIMEOUT_MS", "soon")
    with pytest.raises(ValueError, match="WHALE_EXECUTOR_SESSION_TIMEOUT_MS"):
        _settings("executor")()


def test_every_structlog_logger_is_named_after_its_module() -> None:
    sources = [*ROOT.joinpath("whale").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]
    typed = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path in sources
        for m in re.finditer(r"structlog\.get_logger\(([^)]*)\)", path.read_text())
        if m.group(1) != "__name__"
    ]
    assert typed == []
