"""Fixtures of the console's browser tests: Debian's Chromium (installed by the project's script
when missing), the real stack with the console, a Playwright browser, the screenshots folder."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from whale import topics
from whale.admin import ensure_topics
from whale.settings import WhaleSettings

from .console_platform import POOL, ConsolePlatform

ROOT = Path(__file__).resolve().parents[3]
INSTALL = ROOT / "deploy" / "tools" / "install-chromium.sh"
SCREENSHOTS = Path(os.environ.get("WHALE_SCREENSHOTS_DIR") or ROOT / "build" / "screenshots")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser binary: ``$WHALE_CHROMIUM``, Debian's ``chromium``, or installed by the script."""
    proc = subprocess.run(
        ["/bin/sh", str(INSTALL)], capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"{INSTALL} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# package scope: the platform and the browser stop after the console's tests. Playwright's sync API
# runs an event loop in the main thread while it is open, so a session-wide browser would make every
# later test that calls asyncio.run() fail ("cannot be called from a running event loop").
@pytest.fixture(scope="package")
def platform(stack: WhaleSettings) -> Iterator[ConsolePlatform]:
    ensure_topics(stack, [topics.pool_topic_spec(POOL)])
    workdir = Path(tempfile.mkdtemp(prefix="whale-console-it-"))  # the logs outlive the run for reading
    running = ConsolePlatform(stack, workdir)
    try:
        running.start_all()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def browser(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        found = driver.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            yield found
        finally:
            found.close()
