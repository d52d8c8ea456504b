"""People in the loop in a real browser against the real stack: approve a pending approval from
the approvals page and see the workflow continue on the run's page, redrive a real dead letter
(an event whose rule fails to render) once, replay events as a dry run. Screenshots of each page go
to build/screenshots/."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .console_platform import PREFIX, SESSION, ConsolePlatform
from .test_console_browser import UNLABELLED, page_for

pytestmark = pytest.mark.integration


def test_approve_a_pending_approval_and_see_the_workflow_continue(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    platform.approval_rule()
    host = f"web-{uuid.uuid4().hex[:6]}"
    platform.post_event("approve", host, {"why": "memory leak"})

    def pending() -> Any:
        found = platform.api("GET", "/approvals", platform.tokens["viewer"])
        mine = [a for a in found.json().get("approvals", []) if a.get("question") == f"Restart {host}?"]
        return mine[0] if found.status_code == 200 and mine else None

    approval = platform.wait_until(pending, "the workflow's pending approval")
    page = page_for(browser, platform, "operator")
    page.goto(f"{platform.console}/approvals")
    card = page.locator("article.approval", has_text=f"Restart {host}?")
    card.wait_for()
    assert not page.evaluate(UNLABELLED)
    page.screenshot(path=str(screenshots / "approvals.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the card fits, nothing scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshots / "approvals-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # no reason first: the API's 400, shown beside the field
    card.get_by_role("button", name="Approve", exact=True).click()
    card = page.locator("article.approval", has_text=f"Restart {host}?")
    card.locator("p.problem").wait_for(timeout=30_000)
    assert "reason" in card.locator("p.problem").inner_text()
    page.screenshot(path=str(screenshots / "approval-problem.png"), full_page=True)

    card.get_by_label(re.compile("Reason")).fill("leak confirmed")
    card.get_by_label("Comment").fill("restart during the quiet hour")
    card.get_by_role("button", name="Approve", exact=True).click()
    card = page.locator("article.approval", has_text=f"Restart {host}?")
    card.locator('[data-status="answered"]').wait_for(timeout=30_000)
    assert "the workflow continues" in card.inner_text()

    card.get_by_role("link", name="See the run").click()
    page.wait_for_url(re.compile(r"/runs/"))
    deadline = time.monotonic() + 120
    while page.locator('tr[data-task="go"][data-status="succeeded"]').count() == 0:
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(2)
        page.reload()
    assert page.locator('tr[data-task="gate"][data-status="succeeded"]').count() == 1
    assert f"it-operator-{SESSION}: leak confirmed" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "run.png"), full_page=True)
    run = platform.api("GET", f"/runs/{approval['run_id']}", platform.tokens["viewer"]).json()
    assert run["tasks"]["gate"]["output"]["by"] == f"it-operator-{SESSION}"  # the person, not the console

    page.goto(f"{platform.console}/runs?name={quote(run['name'])}")
    assert page.get_by_role("link", name=run["name"]).count() >= 1
    page.screenshot(path=str(screenshots / "runs.png"), full_page=True)


def test_a_viewer_sees_run_controls_disabled_with_the_reason(browser: Any, platform: ConsolePlatform) -> None:
    page = page_for(browser, platform, "viewer")
    page.goto(f"{platform.console}/runs")
    link = page.locator("table.wide tbody a").first
    if link.count() == 0:
        pytest.skip("no run recorded yet")
    link.click()
    page.wait_for_url(re.compile(r"/runs/"))
    for name in ("Cancel", "Pause", "Resume", "Retry"):
        button = page.get_by_role("button", name=name)
        assert button.is_disabled() and button.get_attribute("title") == "needs the operator role"


def test_redrive_a_real_dead_letter_once(browser: Any, platform: ConsolePlatform, screenshots: Path) -> None:
    event = platform.post_event("broken", f"db-{uuid.uuid4().hex[:6]}", {"status": "failed"})

    def letter() -> Any:
        found = platform.api("GET", "/dlq", platform.tokens["viewer"], params={"reason": f"nope{SESSION}"})
        mine = [
            x for x in found.json().get("dead_letters", []) if (x.get("event") or {}).get("id") == event["id"]
        ]
        return mine[0] if found.status_code == 200 and mine else None

    found = platform.wait_until(letter, "the dead letter of the event whose rule fails to render")
    page = page_for(browser, platform, "operator")
    page.goto(f"{platform.console}/dead-letters?reason=nope{SESSION}")
    row = page.locator(f'tr[data-letter="{found["id"]}"]')
    row.wait_for()
    assert f"nope{SESSION}" in row.inner_text()
    page.screenshot(path=str(screenshots / "dead-letters.png"), full_page=True)
    row.get_by_role("button", name=re.compile("Redrive")).click()
    page.locator("#redrive-result").wait_for(timeout=60_000)  # the answer, whichever it is
    assert page.locator("ul.redriven").count() == 1, page.locator("#redrive-result").inner_text()
    redriven = page.locator("ul.redriven").inner_text()
    assert found["id"] in redriven and "whale.ingest" in redriven
    page.screenshot(path=str(screenshots / "dead-letter-redriven.png"), full_page=True)

    page.locator(f'tr[data-letter="{found["id"]}"]').get_by_role("button", name=re.compile("Redrive")).click()
    page.locator("ul.skipped").wait_for(timeout=30_000)  # a second time: refused
    assert "redriven already" in page.locator("ul.skipped").inner_text()

    if page.locator("details.redrive[open]").count() == 0:  # opened already when a result is shown
        page.locator("summary", has_text="Redrive by filter").click()
    page.get_by_label("Reason (words)").nth(1).fill(f"nope{SESSION}")
    page.get_by_role("button", name="Redrive filtered", exact=True).click()
    page.locator("#redrive-result").wait_for(timeout=30_000)
    skipped = page.locator("ul.skipped").inner_text() if page.locator("ul.skipped").count() else ""
    assert found["id"] in skipped  # the filter's redrive skips the letter redriven already
    page.screenshot(path=str(screenshots / "dead-letters-filtered.png"), full_page=True)


def test_replay_is_a_dry_run_by_default_and_shows_its_result(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    platform.post_event("unhandled", f"db-{uuid.uuid4().hex[:6]}", {"status": "failed"})
    page = page_for(browser, platform, "operator")
    page.goto(f"{platform.console}/events")
    page.locator("summary", has_text="Replay stored events").click()
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("Since (UTC)").nth(1).fill(since)
    page.get_by_label("Types (comma-separated)").fill(f"{PREFIX}.unhandled")
    assert page.get_by_label("Mode").input_value() == "dry"
    page.get_by_role("button", name="Replay", exact=True).click()
    result = page.locator("#replay-result")
    result.wait_for(timeout=60_000)
    assert re.search(r"dry replay replay-\w+: \d+ events? replayed", result.inner_text()), result.inner_text()
    page.screenshot(path=str(screenshots / "events-replay.png"), full_page=True)
