"""Slack's signing-secret check, with the example Slack documents, and its payloads."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from whale_chat import slack
from whale_chat.errors import BadCallback, BadSignature
from whale_chat.replay import ReplayGuard

# Slack's documented example ("Verifying requests from Slack").
SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"
TIMESTAMP = "1531420618"
BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
    b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
    b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
EXPECTED = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def headers(signature: str = EXPECTED, timestamp: str = TIMESTAMP) -> dict[str, str]:
    return {"x-slack-signature": signature, "x-slack-request-timestamp": timestamp}


def test_the_documented_example_signs_to_the_documented_signature() -> None:
    assert slack.signature(SECRET, TIMESTAMP, BODY) == EXPECTED
    slack.verify(SECRET, headers(), BODY, window=300, now=int(TIMESTAMP) + 10)


def test_a_wrong_signature_a_changed_body_or_missing_headers_are_refused() -> None:
    now = int(TIMESTAMP)
    with pytest.raises(BadSignature, match="does not match"):
        slack.verify(SECRET, headers("v0=" + "0" * 64), BODY, window=300, now=now)
    with pytest.raises(BadSignature, match="does not match"):
        slack.verify(SECRET, headers(), BODY + b"&x=1", window=300, now=now)
    with pytest.raises(BadSignature, match="missing"):
        slack.verify(SECRET, {}, BODY, window=300, now=now)


def test_a_stale_timestamp_is_refused_even_when_signed() -> None:
    with pytest.raises(BadSignature, match="away from now") as caught:
        slack.verify(SECRET, headers(), BODY, window=300, now=int(TIMESTAMP) + 301)
    assert caught.value.status == 401


def test_a_replayed_request_is_refused() -> None:
    guard = ReplayGuard(300)
    now = int(TIMESTAMP)
    slack.verify(SECRET, headers(), BODY, window=300, guard=guard, now=now)
    with pytest.raises(BadSignature, match="replay"):
        slack.verify(SECRET, headers(), BODY, window=300, guard=guard, now=now + 1)


def test_a_slash_command_and_a_button_click_are_read() -> None:
    command = slack.parse(
        urlencode(
            {"user_id": "U1", "text": " approve wf-1.gate ok ", "response_url": "https://hooks.slack.com/x"}
        ).encode()
    )
    assert (command.user, command.text, command.interactive) == ("U1", "approve wf-1.gate ok", False)
    payload = {"type": "block_actions", "user": {"id": "U2"}, "response_url": "https://hooks.slack.com/y",
               "actions": [{"action_id": "deny", "value": "wf-2.gate"}]}  # fmt: skip
    click = slack.parse(urlencode({"payload": json.dumps(payload)}).encode())
    assert (click.user, click.text, click.response_url) == (
        "U2",
        "deny wf-2.gate",
        "https://hooks.slack.com/y",
    )


def test_unreadable_payloads_are_400s_naming_the_field() -> None:
    with pytest.raises(BadCallback) as caught:
        slack.parse(
            urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": "U"}})}).encode()
        )
    assert caught.value.field == "payload.type"
    with pytest.raises(BadCallback):
        slack.parse(b"text=hello")
