"""Slack: the signing-secret check and the slash-command and interactive (button) payloads.

Slack signs ``v0:<X-Slack-Request-Timestamp>:<raw body>`` with HMAC-SHA256 under the app's signing
secret and sends ``X-Slack-Signature: v0=<hex>``; a request whose timestamp is more than five
minutes away from now is refused, and so is one whose signature was accepted already (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from whale_chat.errors import BadCallback, BadSignature
from whale_chat.replay import ReplayGuard

VERSION = "v0"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``v0=<hex HMAC-SHA256 of "v0:<timestamp>:" + body>``, as Slack sends it."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


def verify(
    secret: bytes,
    headers: dict[str, str],
    body: bytes,
    *,
    window: int,
    guard: ReplayGuard | None = None,
    now: float | None = None,
) -> None:
    """Raise :class:`BadSignature` unless the request is Slack's, recent and new."""
    timestamp = headers.get("x-slack-request-timestamp", "").strip()
    given = headers.get("x-slack-signature", "").strip()
    if not timestamp or not given:
        raise BadSignature(
            "missing X-Slack-Request-Timestamp or X-Slack-Signature", field="x-slack-signature"
        )
    try:
        when = int(timestamp)
    except ValueError:
        raise BadSignature("X-Slack-Request-Timestamp must be unix seconds", field="timestamp") from None
    now = time.time() if now is None else now
    if abs(now - when) > window:
        raise BadSignature(
            f"the request's timestamp is {int(now - when)} s away from now (accepted: {window} s)",
            field="timestamp",
        )
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise BadSignature("X-Slack-Signature does not match the body", field="x-slack-signature")
    if guard is not None and not guard.first_time("slack:" + given, now):
        raise BadSignature("this request was received already (replay)", field="x-slack-signature")


@dataclass(frozen=True, slots=True)
class SlackRequest:
    """What a person asked: ``text`` (a command line), who, and where to answer."""

    user: str
    text: str
    response_url: str | None
    interactive: bool


def parse(body: bytes) -> SlackRequest:
    """A slash command (form fields) or an interactive payload (form field ``payload``, JSON)."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    if "payload" in form:
        return _interactive(form["payload"])
    user = form.get("user_id")
    if not user:
        raise BadCallback("a slash command needs user_id", field="user_id")
    return SlackRequest(user, form.get("text", "").strip(), form.get("response_url") or None, False)


def _interactive(raw: str) -> SlackRequest:
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        raise BadCallback("payload is not JSON", field="payload") from None
    if not isinstance(payload, dict):
        raise BadCallback("payload must be an object", field="payload")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    actions = payload.get("actions")
    if not isinstance(user, dict) or not user.get("id"):
        raise BadCallback("payload.user.id is missing", field="payload.user.id")
    if payload.get("type") != "block_actions" or not isinstance(actions, list) or not actions:
        raise BadCallback("only block_actions payloads (buttons) are handled", field="payload.type")
    action = actions[0] if isinstance(actions[0], dict) else {}
    # A button's action_id is the verb (approve, deny, claim, resolve), its value the id.
    verb, value = str(action.get("action_id", "")), str(action.get("value", ""))
    if not verb or not value:
        raise BadCallback("the button needs action_id (the verb) and value (the id)", field="payload.actions")
    response_url = payload.get("response_url")
    return SlackRequest(
        str(user["id"]), f"{verb} {value}", response_url if isinstance(response_url, str) else None, True
    )
