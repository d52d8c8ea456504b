"""Run a catalogued action from a to-do in a real browser: the to-do a real unhandled event opened,
``core.echo`` of this session's executor pool chosen, its params form filled, the run id shown and
its page reached, where the run succeeds and was started by the signed-in person."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .console_platform import POOL, SESSION, ConsolePlatform
from .test_console_browser import UNLABELLED, page_for

pytestmark = pytest.mark.integration


def test_an_operator_runs_a_catalogued_action_from_a_todo_and_sees_the_run(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    subject = f"web-{uuid.uuid4().hex[:6]}"
    item = platform.unhandled_todo(subject, {"job": "log-rotate", "status": "failed"})
    page = page_for(browser, platform, "operator")
    page.goto(f"{platform.console}/todos/{item['id']}")
    section = page.locator("#run-action")
    section.get_by_label("Action or workflow").select_option(f"action:{POOL}:core.echo")
    section.get_by_role("button", name="Choose").click()
    page.wait_for_url(re.compile(r"target="))
    section = page.locator("#run-action")
    section.get_by_label(re.compile("message", re.I)).fill(f"rotated logs on {subject}")
    assert not page.evaluate(UNLABELLED)
    section.get_by_role("button", name="Run core.echo").click()
    link = page.locator("#run-action a[data-run-id]")
    link.wait_for(timeout=30_000)
    assert f"core.echo requested as it-operator-{SESSION}" in page.locator("#run-action").inner_text()
    page.screenshot(path=str(screenshots / "todo-run-action.png"), full_page=True)

    link.click()
    page.wait_for_url(re.compile(r"/runs/"))
    deadline = time.monotonic() + 120
    while page.locator('[data-state="succeeded"]').count() == 0:  # recorded once the executor ran it
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(2)
        page.reload()
    assert f"rotated logs on {subject}" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "todo-run.png"), full_page=True)


def test_a_rules_backtest_counts_the_stored_events_it_would_have_fired_on(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    event = platform.post_event("alert", f"vm-{uuid.uuid4().hex[:6]}", {"value": 91})

    def indexed() -> bool:
        found = platform.api("GET", f"/events/{event['source']}/{event['id']}", platform.tokens["viewer"])
        return found.status_code == 200

    platform.wait_until(indexed, "the alert indexed")
    page = page_for(browser, platform, "viewer")
    page.goto(f"{platform.console}/rules/console-it-{SESSION}")
    section = page.locator("#backtest")
    section.get_by_label("Since").fill("1h")
    section.get_by_role("button", name="Backtest").click()
    fired = page.locator("#backtest [data-would-fire]")
    fired.wait_for(timeout=30_000)
    assert int(fired.get_attribute("data-would-fire") or 0) >= 1, section.inner_text()
    assert page.locator("#backtest svg.spark rect").count() >= 1
    page.screenshot(path=str(screenshots / "rule-backtest.png"), full_page=True)
