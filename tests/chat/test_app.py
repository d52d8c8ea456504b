"""The chat app over a stand-in event center: signed callbacks in, the person's command out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from whale_chat import slack, wecom
from whale_chat.app import create_app
from whale_chat.center import EventCenter
from whale_chat.config import ChatConfig
from whale_chat.settings import Settings

SECRET = "slack-secret"
TOKEN, AES_KEY, CORP = "wecom-token", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww-corp"
CONFIG = ChatConfig.from_document(
    {
        "users": {"slack:U-ANN": "ann", "wecom:vic": "vic"},
        "aliases": [{"format": "clean logs on {{host}}", "action": "disk.clean"}],
    }
)


class Center:
    """Stands in for the event center: records calls; ``vic`` is only a viewer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        person = request.headers.get("x-whale-on-behalf-of")
        self.calls.append((request.url.path, json.loads(request.content or b"{}"), person))
        if person == "vic":
            return httpx.Response(403, json={"error": "forbidden", "message": "person 'vic' has role viewer"})
        return httpx.Response(202, json={"run_id": "act-1"})


class Slack:
    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posted.append(json.loads(request.content))
        return httpx.Response(200, text="ok")


@pytest.fixture
def parts() -> Iterator[tuple[TestClient, Center, Slack]]:
    center, thread = Center(), Slack()
    settings = Settings(
        slack_signing_secret=SecretStr(SECRET), wecom_token=SecretStr(TOKEN), wecom_aes_key=SecretStr(AES_KEY),
        wecom_corp_id=CORP, slack_response_hosts=["hooks.slack.com"],
    )  # fmt: skip
    app = create_app(
        settings,
        CONFIG,
        EventCenter("http://center", "wht_x.y", timeout=5, transport=httpx.MockTransport(center)),
        httpx.AsyncClient(transport=httpx.MockTransport(thread)),
    )
    with TestClient(app) as client:
        yield client, center, thread


def slack_post(client: TestClient, fields: dict[str, str], secret: str = SECRET) -> httpx.Response:
    body = urlencode(fields).encode()
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack.signature(secret.encode(), ts, body),
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    answer: httpx.Response = client.post("/slack", content=body, headers=headers)
    return answer


def test_a_signed_slash_command_acts_as_the_mapped_person_and_answers_in_the_thread(parts: Any) -> None:
    client, center, thread = parts
    answer = slack_post(client, {"user_id": "U-ANN", "text": "approve wf-1.gate ship it",
                                 "response_url": "https://hooks.slack.com/commands/1"})  # fmt: skip
    assert answer.status_code == 200
    assert center.calls == [("/approvals/wf-1.gate", {"decision": "approve", "comment": "ship it"}, "ann")]
    assert thread.posted[0]["text"] == "Approved wf-1.gate as ann."


def test_an_unmapped_user_is_refused_without_calling_the_center(parts: Any) -> None:
    client, center, thread = parts
    slack_post(
        client, {"user_id": "U-EVE", "text": "approve wf-1.gate", "response_url": "https://hooks.slack.com/c"}
    )
    assert center.calls == []
    assert "not mapped" in thread.posted[0]["text"]


def test_a_bad_signature_is_401_and_a_foreign_response_url_400(parts: Any) -> None:
    client, center, _ = parts
    assert slack_post(client, {"user_id": "U-ANN", "text": "help"}, secret="wrong").status_code == 401
    assert (
        slack_post(client, {"user_id": "U-ANN", "text": "help", "response_url": "http://evil/"}).status_code
        == 400
    )
    assert center.calls == []


def wecom_post(client: TestClient, user: str, text: str) -> httpx.Response:
    sealed = wecom.WeComCrypto(TOKEN, AES_KEY, CORP)
    plain = (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
             f"<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
             "<MsgId>1</MsgId><AgentID>1</AgentID></xml>")  # fmt: skip
    encrypted = sealed.encrypt(plain)
    ts, nonce = str(int(time.time())), f"n{time.monotonic_ns()}"
    query = {"msg_signature": wecom.signature(TOKEN, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    body = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    answer: httpx.Response = client.post("/wecom", params=query, content=body.encode())
    return answer


def reply_text(answer: httpx.Response) -> str:
    sealed = wecom.WeComCrypto(TOKEN, AES_KEY, CORP)
    encrypted = wecom.read_xml(answer.content, "reply").findtext("Encrypt") or ""
    return wecom.parse_message(sealed.decrypt(encrypted)).text


def test_a_wecom_message_from_a_viewer_is_refused_by_the_center_and_the_reply_says_so(parts: Any) -> None:
    client, center, _ = parts
    answer = wecom_post(client, "vic", "clean logs on web-1")
    assert answer.status_code == 200
    assert center.calls == [("/actions/disk.clean/run", {"params": {"host": "web-1"}}, "vic")]
    assert reply_text(answer).startswith("Refused for vic")


def test_the_wecom_url_check_answers_the_decrypted_echostr(parts: Any) -> None:
    client, _, _ = parts
    sealed = wecom.WeComCrypto(TOKEN, AES_KEY, CORP)
    echo = sealed.encrypt("12345")
    ts = str(int(time.time()))
    query = {
        "msg_signature": wecom.signature(TOKEN, ts, "n", echo),
        "timestamp": ts,
        "nonce": "n",
        "echostr": echo,
    }
    answer = client.get("/wecom", params=query)
    assert (answer.status_code, answer.text) == (200, "12345")
    assert client.get("/wecom", params={**query, "msg_signature": "0" * 40}).status_code == 401


def test_unconfigured_platforms_answer_404() -> None:
    app = create_app(Settings(), ChatConfig(), EventCenter("http://center", None, timeout=1))
    with TestClient(app) as client:
        assert client.post("/slack", content=b"x").status_code == 404
        assert client.post("/wecom", content=b"<xml/>").status_code == 404
