"""Personal tokens on the real whale.tokens topic: made with the CLI, accepted by two running event
centers, revoked with the CLI and then refused by both (no restart, no file to copy), audited."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest
from whale_event_center.settings import Settings

from tests.ports import free_port
from whale import topics
from whale.cli import main as whale
from whale.settings import WhaleSettings
from whale.testing import Tap

from .live import AppThread

pytestmark = pytest.mark.integration


def _eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.2)


def test_a_token_made_with_the_cli_works_on_every_replica_until_revoked(
    stack: WhaleSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert whale(["tokens", "create", "--name", "it-viewer", "--role", "viewer", "--ttl-days", "1"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"^(wht_\S+)$", out, re.M)
    assert token is not None, out
    token_id = token.group(1)[4:].split(".")[0]
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    settings = [Settings(whale=stack, port=free_port(), schemas_dir=None) for _ in range(2)]
    with AppThread(settings[0]) as one, AppThread(settings[1]) as two:
        for app in (one, two):
            app.wait_ready()
            assert httpx.get(f"{app.url}/rules", headers=headers, timeout=30).status_code == 200
            assert httpx.put(f"{app.url}/rules/x", json={}, headers=headers, timeout=30).status_code == 403

        assert whale(["tokens", "list"]) == 0
        assert token_id in capsys.readouterr().out
        audits = Tap(stack, topics.EVENTS, keep=lambda e: e.type.startswith("whale.audit.token."))
        try:
            assert whale(["tokens", "revoke", token_id]) == 0
            _eventually(lambda: any(e.subject == f"token/{token_id}" for e in audits.events))
        finally:
            audits.close()
        (revoked,) = [e for e in audits.events if e.subject == f"token/{token_id}"]
        assert revoked.type == "whale.audit.token.revoked" and revoked.data["after"]["revoked"] is True
        assert revoked.data["actor"]["name"].startswith("cli:")

        for app in (one, two):
            url = f"{app.url}/rules"
            _eventually(lambda url=url: httpx.get(url, headers=headers, timeout=30).status_code == 401)  # type: ignore[misc]
            refused = httpx.get(url, headers=headers, timeout=30).json()
            assert "revoked" in refused["message"]
