"""The event loop and HTTP parser choice (:mod:`whale.eventloop`): uvloop and httptools by default,
the standard ones on request or when the fast ones are not installed, and a bad value refused at
start-up with the field named."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvloop
from pydantic import ValidationError

from whale import eventloop
from whale.settings import WhaleSettings


@pytest.fixture(autouse=True)
def _fresh_choices() -> Iterator[None]:
    eventloop.event_loop.cache_clear()
    eventloop.http_parser.cache_clear()
    yield
    eventloop.event_loop.cache_clear()
    eventloop.http_parser.cache_clear()


def test_the_default_settings_choose_uvloop_and_httptools() -> None:
    settings = WhaleSettings()
    assert (settings.event_loop, settings.http_parser) == ("uvloop", "httptools")
    assert eventloop.uvicorn_options(settings.event_loop, settings.http_parser) == {
        "loop": "uvloop",
        "http": "httptools",
    }


def test_the_environment_chooses_the_standard_loop_and_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_EVENT_LOOP", "asyncio")
    monkeypatch.setenv("WHALE_HTTP_PARSER", "h11")
    settings = WhaleSettings()
    assert eventloop.uvicorn_options(settings.event_loop, settings.http_parser) == {
        "loop": "asyncio",
        "http": "h11",
    }
    loop = eventloop.loop_factory(settings.event_loop)()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.parametrize(("name", "value"), [("WHALE_EVENT_LOOP", "trio"), ("WHALE_HTTP_PARSER", "h2")])
def test_an_unknown_choice_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        WhaleSettings()
    assert name.removeprefix("WHALE_").lower() in str(raised.value)


def test_without_uvloop_and_httptools_installed_the_standard_ones_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(eventloop, "_installed", lambda module: False)
    assert eventloop.uvicorn_options("uvloop", "httptools") == {"loop": "asyncio", "http": "h11"}
    loop = eventloop.loop_factory("uvloop")()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_factory_makes_uvloop_loops() -> None:
    loop = eventloop.loop_factory("uvloop")()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_policy_makes_later_loops_uvloop_loops() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        eventloop.install_policy("uvloop")
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)
