"""Prometheus metrics of the console (declared once)."""

from __future__ import annotations

from whale.metrics import Families

CONSOLE = Families("console")

PAGES = CONSOLE.counter(
    "whale_console_pages_total",
    "Pages and fragments served, by page and outcome (ok, error)",
    ["page", "outcome"],
)
API_CALLS = CONSOLE.counter(
    "whale_console_api_calls_total",
    "Calls to the event center's API, by method and answer class (2xx, 4xx, 5xx, unreachable)",
    ["method", "status"],
)
SIGN_INS = CONSOLE.counter(
    "whale_console_sign_ins_total", "Sign-in attempts by outcome (ok, refused)", ["outcome"]
)
