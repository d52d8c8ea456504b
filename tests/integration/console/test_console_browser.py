"""The console in a real browser (Playwright driving Debian's Chromium headless) against the real
stack: sign in with a personal token, claim and resolve a to-do a real unhandled event opened, open
a chain's trace and see every hop, edit a rule with an error and see the message in place. Each page
is photographed into build/screenshots/ for a reviewer."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .console_platform import POOL, PREFIX, SESSION, ConsolePlatform

pytestmark = pytest.mark.integration
UNLABELLED = """Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name || e.id)"""


def page_for(browser: Any, platform: ConsolePlatform, role: str) -> Any:
    """A new browser page signed in with the role's personal token through the sign-in form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{platform.console}/todos")
    assert "/login" in page.url  # no session yet: the sign-in page
    page.get_by_label(re.compile("Personal token")).fill(platform.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/todos"))
    assert page.get_by_text(f"it-{role}-{SESSION}").is_visible()
    return page


def test_sign_in_then_claim_and_resolve_a_todo_opened_by_a_real_unhandled_event(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    subject = f"db-{uuid.uuid4().hex[:6]}"
    item = platform.unhandled_todo(subject, {"job": "nightly-backup", "status": "failed"})
    page = page_for(browser, platform, "operator")
    page.goto(f"{platform.console}/todos?type={quote(PREFIX + '.unhandled')}")
    card = page.locator(f"#todo-{item['id']}")
    card.wait_for()
    page.screenshot(path=str(screenshots / "todos.png"), full_page=True)
    assert not page.evaluate(UNLABELLED)
    card.get_by_role("button", name="Claim").click()
    card = page.locator(f"#todo-{item['id']}")
    card.locator('[data-status="claimed"]').wait_for(timeout=30_000)
    card.get_by_label("Comment").fill("cleaned the backup volume")
    card.get_by_role("button", name="Resolve").click()
    page.locator(f'#todo-{item["id"]} [data-status="resolved"]').wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "todo-resolved.png"), full_page=True)
    stored = platform.api("GET", f"/todos/{item['id']}", platform.tokens["viewer"]).json()
    assert stored["status"] == "resolved"
    assert stored["resolved_by"] == f"it-operator-{SESSION}"  # the person's own identity, not the console's
    assert stored["resolution"] == "cleaned the backup volume"

    page.goto(f"{platform.console}/todos/{item['id']}")
    page.screenshot(path=str(screenshots / "todo.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{platform.console}/todos?status=all&type={quote(PREFIX + '.unhandled')}")
    page.screenshot(path=str(screenshots / "todos-phone.png"), full_page=True)


def test_a_viewer_sees_the_todo_actions_disabled(browser: Any, platform: ConsolePlatform) -> None:
    page = page_for(browser, platform, "viewer")
    page.goto(f"{platform.console}/todos?status=all")
    for button in page.get_by_role("button", name="Claim").all():
        assert button.is_disabled()


def test_the_trace_of_a_chain_shows_every_hop_and_highlights_the_failure(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    subject = f"vm-{uuid.uuid4().hex[:6]}"
    event = platform.post_event("alert", subject, {"value": 97})

    def chain() -> Any:
        found = platform.api("GET", f"/traces/{event['id']}", platform.tokens["viewer"])
        if found.status_code != 200:
            return None
        steps = found.json()["events"]
        types = [s["event"]["type"] for s in steps if isinstance(s.get("event"), dict)]
        return steps if "whale.action.failed" in types else None

    steps = platform.wait_until(chain, "the alert's chain up to the failed action")
    page = page_for(browser, platform, "viewer")
    page.goto(f"{platform.console}/traces/{event['id']}")
    page.screenshot(path=str(screenshots / "trace.png"), full_page=True)
    nodes = page.locator("g.hop-node")
    assert nodes.count() == len(steps) >= 3
    shown = [nodes.nth(i).get_attribute("data-type") for i in range(nodes.count())]
    assert shown[0] == f"{PREFIX}.alert"
    assert {"whale.action.requested", "whale.action.failed"} <= set(shown)
    assert page.locator("rect.node.failed").count() >= 1
    hops = page.locator("table tbody").inner_text()
    assert f"disk still full on {subject}" in hops, hops

    page.goto(f"{platform.console}/events?type={quote(PREFIX + '.alert')}")
    page.get_by_role("link", name=re.compile(r"\d{4}-\d\d-\d\d")).first.click()
    page.get_by_role("heading", name="Data").wait_for()
    assert page.get_by_text('"value": 97').is_visible()
    page.screenshot(path=str(screenshots / "event.png"), full_page=True)
    page.get_by_role("link", name="Explain against the rules").click()
    page.get_by_text(f"console-it-{SESSION}").first.wait_for()
    page.screenshot(path=str(screenshots / "explain.png"), full_page=True)


def test_a_rule_saved_with_an_error_shows_the_message_in_place(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    page = page_for(browser, platform, "author")
    page.goto(f"{platform.console}/rules")
    assert page.get_by_role("link", name=f"console-it-{SESSION}").is_visible()  # the directory's rule
    page.screenshot(path=str(screenshots / "rules.png"), full_page=True)
    page.goto(f"{platform.console}/rules/new")
    draft = f"id: console-it-draft-{SESSION}\nmatch:\n  all:\n    - {{field: type, equals: {PREFIX}.alert}}\n"
    page.get_by_label("Rule (YAML)").fill(
        draft + f"target: {{kind: action, name: core.no-such-action, pool: {POOL}}}\n"  # a known catalogue
    )
    page.get_by_role("button", name="Save").click()
    problem = page.locator("li.problem").first
    problem.wait_for(timeout=30_000)
    assert "core.no-such-action" in page.locator("ul.problems").inner_text()
    assert page.get_by_label("Rule (YAML)").input_value().startswith(draft)  # kept for fixing
    page.screenshot(path=str(screenshots / "rule-error.png"), full_page=True)
    assert not page.evaluate(UNLABELLED)


@pytest.mark.parametrize(
    "path", ["/events", "/overview", "/dead-letters", "/catalog", "/schemas", "/subscriptions", "/traces"]
)
def test_every_other_page_renders_for_a_viewer(
    browser: Any, platform: ConsolePlatform, screenshots: Path, path: str
) -> None:
    page = page_for(browser, platform, "viewer")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    answer = page.goto(f"{platform.console}{path}")
    assert answer is not None and answer.status == 200
    assert page.locator("main h1").first.is_visible()
    page.screenshot(path=str(screenshots / f"{path.strip('/').replace('/', '-')}.png"), full_page=True)
    assert not errors
    unlabelled = page.evaluate(UNLABELLED)
    assert not unlabelled, f"form fields without a label on {path}: {unlabelled}"
    page.keyboard.press("Tab")  # the keyboard's first stop skips the menu
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_the_live_tail_fills_itself_in_the_browser(browser: Any, platform: ConsolePlatform) -> None:
    page = page_for(browser, platform, "viewer")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{platform.console}/events?live=1")
    page.locator("#tail table").wait_for(timeout=30_000)  # htmx loaded (CSP allows it) and polled
    first = page.locator("#tail p.muted").inner_text()
    page.wait_for_function(
        "text => document.querySelector('#tail p.muted').innerText !== text", arg=first, timeout=30_000
    )  # polled again
    assert not errors


def test_the_sign_in_page_refuses_an_unknown_token(
    browser: Any, platform: ConsolePlatform, screenshots: Path
) -> None:
    page = browser.new_page()
    page.goto(f"{platform.console}/login")
    page.get_by_label(re.compile("Personal token")).fill("wht_nope.nothing")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#login-error").wait_for()
    assert "unknown token" in page.locator("#login-error").inner_text()
    page.screenshot(path=str(screenshots / "login.png"), full_page=True)
