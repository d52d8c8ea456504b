"""The vendored htmx is the registry package's file (hash recorded) and no page loads from a CDN."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import whale_console

PACKAGE = Path(whale_console.__file__).parent


def test_vendored_htmx_matches_the_recorded_version_and_hash() -> None:
    record = (PACKAGE / "static" / "VENDORED.md").read_text()
    digest = hashlib.sha256((PACKAGE / "static" / "htmx.min.js").read_bytes()).hexdigest()
    assert digest in record and "0BSD" in record
    version = re.search(r"\| (\d+\.\d+\.\d+) \|", record)
    assert version is not None and version.group(1).startswith("2.")


def test_templates_load_scripts_and_styles_only_from_the_console_itself() -> None:
    for template in (PACKAGE / "templates").glob("*.html"):
        text = template.read_text()
        for url in re.findall(r'(?:src|href)="([^"{]+)"', text):
            assert not url.startswith(("http:", "https:", "//")), (template.name, url)
