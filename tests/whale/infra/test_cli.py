"""`whale infra up|down|status` wiring: arguments, output and exit codes."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from whale.cli import infra as cli
from whale.infra import stack
from whale.settings import WhaleSettings


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whale")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def _status(state: stack.State) -> stack.StackStatus:
    return stack.StackStatus(
        (
            stack.ComponentStatus("kafka", "127.0.0.1:9092", state),
            stack.ComponentStatus("elasticsearch", "http://127.0.0.1:9200", state),
        ),
        WhaleSettings(),
    )


def test_status_exits_0_when_everything_runs_and_3_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack, "status", lambda *a: _status(stack.RUNNING))
    args = _parse("infra", "status")
    assert args.handler(args) == 0
    assert "kafka" in capsys.readouterr().out
    monkeypatch.setattr(stack, "status", lambda *a: _status(stack.NOT_RUNNING))
    assert args.handler(args) == 3


def test_down_passes_the_named_components(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def down(settings: WhaleSettings, infra: object, components: object, **kw: object) -> stack.StackStatus:
        seen["components"] = components
        return _status(stack.STOPPED)

    monkeypatch.setattr(stack, "down", down)
    args = _parse("infra", "down", "kafka")
    assert args.handler(args) == 0
    assert seen["components"] == ["kafka"]
    args = _parse("infra", "down")
    args.handler(args)
    assert seen["components"] is None


def test_up_can_print_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(stack, "up", lambda *a, **kw: _status(stack.STARTED))
    args = _parse("infra", "up", "--json")
    assert args.handler(args) == 0
    assert '"state": "started"' in capsys.readouterr().out
