"""``whale rules history|diff|rollback`` against the real /rules router served on loopback (fakes
for Kafka and Elasticsearch behind it)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.event_center.test_rule_history import rules_app
from tests.event_center.test_rules_api import RULE
from tests.ports import free_port
from whale.cli import main as whale
from whale.testing import FakeView


@pytest.fixture
def center(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeView]:
    app, _, rules = rules_app()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    monkeypatch.setenv("WHALE_EVENT_CENTER_URL", f"http://127.0.0.1:{port}")
    try:
        yield rules
    finally:
        server.should_exit = True
        thread.join(30)


def saved_three_times(capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ["WHALE_EVENT_CENTER_URL"]
    for description in ("", "two", "three"):
        assert httpx.put(f"{url}/rules/r1", json={**RULE, "description": description}).status_code < 300
    capsys.readouterr()


def test_history_diff_and_rollback_print_what_the_api_answers(
    center: FakeView, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_three_times(capsys)
    assert whale(["rules", "history", "r1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["v3", "v2", "v1"] and "dev-mode" in lines[0]

    assert whale(["rules", "diff", "r1", "1", "3"]) == 0
    out = capsys.readouterr().out
    assert "--- r1@1" in out and "+description: three" in out

    assert whale(["rules", "rollback", "r1", "1"]) == 0
    assert "version 1 restored as version 4" in capsys.readouterr().out
    record = center.get("r1")
    assert record is not None and record.data["version"] == 4 and record.data["description"] == ""

    assert whale(["rules", "history", "r1", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["versions"]
    assert listed[0]["rolled_back_from"] == 1


def test_unknown_versions_print_the_error_body_and_exit_1(
    center: FakeView, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_three_times(capsys)
    assert whale(["rules", "rollback", "r1", "9"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "not_found"
    assert whale(["rules", "diff", "r1", "1", "9"]) == 1
    assert whale(["rules", "history", "nope"]) == 1
