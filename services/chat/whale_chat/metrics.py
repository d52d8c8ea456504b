"""Prometheus metrics of the chat adapter (declared once)."""

from __future__ import annotations

from whale.metrics import Families

FAMILIES = Families("chat")
"""``whale run chat``: Slack and WeCom callbacks."""

CALLBACKS = FAMILIES.counter(
    "whale_chat_callbacks_total",
    "Chat callbacks received, by platform and outcome (answered, refused, invalid)",
    ["platform", "outcome"],
)
COMMANDS = FAMILIES.counter(
    "whale_chat_commands_total",
    "Commands carried out for people, by platform, verb and outcome (done, refused, failed, unmapped)",
    ["platform", "verb", "outcome"],
)
