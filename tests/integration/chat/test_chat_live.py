"""The chat adapter on the real Kafka and Elasticsearch, with stand-in Slack and WeCom servers that
sign and encrypt as the platforms document (written here from the documentation, not with the
adapter's own code): an approval answered with a signed Slack button lets the workflow continue, a
to-do is claimed and resolved from WeCom, an alias runs a catalogued action, and an unmapped user
and a viewer are refused. The adapter acts through the event center with its ``delegate`` token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import SecretStr
from whale_chat.app import create_app
from whale_chat.center import EventCenter
from whale_chat.config import ChatConfig
from whale_chat.settings import Settings as ChatSettings
from whale_event_center.settings import Settings as CenterSettings
from whale_executor.app import Executor

from tests.integration.event_center.live import AppThread
from tests.integration.executor.conftest import request_event, send_request
from tests.ports import free_port
from whale import tokens as personal
from whale import topics
from whale.authz import Role
from whale.compacted import put
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.store import StoreSettings
from whale.testing import Tap

pytestmark = pytest.mark.integration

SLACK_SECRET = "slack-" + uuid.uuid4().hex
WECOM_TOKEN, WECOM_KEY, CORP = "wecom-token", base64.b64encode(os.urandom(32)).decode()[:43], "ww-test-corp"
TAG = uuid.uuid4().hex[:8]
ANN, BOB, VIC = f"ann-{TAG}", f"bob-{TAG}", f"vic-{TAG}"


async def _token(producer: EventProducer, name: str, role: Role, **kw: Any) -> str:
    token_id, token = personal.new_personal_token()
    record = personal.new_record(token, token_id, name=name, role=role, ttl=timedelta(hours=2), **kw)
    await put(producer, topics.TOKENS, token_id, personal.to_event(record))
    return token


class Thread:
    """Stands in for Slack's response_url: records what the adapter posts back to the thread."""

    def __init__(self) -> None:
        posted: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                return None

        self.posted = posted
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/commands/T1/{TAG}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def answer(self, count: int) -> str:
        for _ in range(600):
            if len(self.posted) >= count:
                return str(self.posted[count - 1]["text"])
            await asyncio.sleep(0.1)
        raise AssertionError(f"no answer {count} in the thread; got {self.posted}")


def slack_call(chat: str, fields: dict[str, str]) -> httpx.Response:
    """Signed as Slack documents: v0=HMAC-SHA256(signing secret, "v0:<timestamp>:<body>")."""
    body = urlencode(fields).encode()
    ts = str(int(time.time()))
    mac = hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}",
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    return httpx.post(chat + "/slack", content=body, headers=headers, timeout=30)


def button(chat: str, thread: Thread, user: str, verb: str, value: str) -> httpx.Response:
    payload = {"type": "block_actions", "user": {"id": user}, "response_url": thread.url,
               "actions": [{"action_id": verb, "value": value, "type": "button"}]}  # fmt: skip
    return slack_call(chat, {"payload": json.dumps(payload)})


def _aes(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def wecom_call(chat: str, user: str, text: str) -> str:
    """A WeCom message as WeCom sends it (AES-256-CBC, PKCS#7 to 32, SHA1 signature); the text of
    the encrypted passive reply after checking its signature."""
    key = base64.b64decode(WECOM_KEY + "=")
    msg = (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
           f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[{text}]]></Content><MsgId>{uuid.uuid4().int % 10**18}</MsgId>"
           "<AgentID>1000002</AgentID></xml>").encode()  # fmt: skip
    plain = os.urandom(16) + struct.pack("!I", len(msg)) + msg + CORP.encode()
    pad = 32 - len(plain) % 32
    enc = _aes(key).encryptor()
    encrypted = base64.b64encode(enc.update(plain + bytes([pad]) * pad) + enc.finalize()).decode()
    ts, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**9)
    sig = hashlib.sha1("".join(sorted([WECOM_TOKEN, ts, nonce, encrypted])).encode()).hexdigest()
    body = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    answer = httpx.post(chat + "/wecom", params={"msg_signature": sig, "timestamp": ts, "nonce": nonce},
                        content=body.encode(), timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    root = ElementTree.fromstring(answer.text)
    sealed = root.findtext("Encrypt") or ""
    assert (
        root.findtext("MsgSignature")
        == hashlib.sha1(
            "".join(
                sorted([WECOM_TOKEN, root.findtext("TimeStamp") or "", root.findtext("Nonce") or "", sealed])
            ).encode()
        ).hexdigest()
    )
    dec = _aes(key).decryptor()
    out = dec.update(base64.b64decode(sealed)) + dec.finalize()
    out = out[16 : -out[-1]]
    (length,) = struct.unpack("!I", out[:4])
    assert out[4 + length :] == CORP.encode()
    return ElementTree.fromstring(out[4 : 4 + length]).findtext("Content") or ""


async def _people(stack: WhaleSettings) -> dict[str, str]:
    producer = EventProducer(stack)
    try:
        return {
            "ann": await _token(producer, ANN, Role.operator),
            "bob": await _token(producer, BOB, Role.operator),
            "vic": await _token(producer, VIC, Role.viewer),
            "chat": await _token(
                producer, f"chat-{TAG}", Role.operator, kind="service", grants=("delegate",)
            ),
        }
    finally:
        await asyncio.to_thread(producer.close)


@pytest.fixture(scope="module")
def people(stack: WhaleSettings) -> dict[str, str]:
    """The tokens, written before the event center starts (its view then holds them at once)."""
    return asyncio.run(_people(stack))


@pytest.fixture(scope="module")
def center(stack: WhaleSettings, people: dict[str, str]) -> Iterator[str]:
    """One event center for the module (loading its views is the slow part on a busy machine)."""
    settings = CenterSettings(whale=stack, port=free_port(), schemas_dir=None)
    app = AppThread(settings)
    with app:
        app.wait_ready(timeout=300)
        yield app.url


@pytest.fixture
def thread() -> Iterator[Thread]:
    found = Thread()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def chat(center: str, people: dict[str, str], pool: str) -> Iterator[str]:
    settings = ChatSettings(
        port=free_port(), event_center_url=center, token=SecretStr(people["chat"]),
        slack_signing_secret=SecretStr(SLACK_SECRET), slack_response_hosts=["127.0.0.1"],
        wecom_token=SecretStr(WECOM_TOKEN), wecom_aes_key=SecretStr(WECOM_KEY), wecom_corp_id=CORP,
    )  # fmt: skip
    config = ChatConfig.from_document({
        "users": {"slack:U-ANN": ANN, "slack:U-VIC": VIC, "wecom:bob": BOB, "wecom:vic": VIC},
        "aliases": [{"format": "say {{text}}", "action": "test.echo", "pool": pool}],
    })  # fmt: skip
    app = create_app(settings, config, EventCenter(center, people["chat"], timeout=30))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning"))
    worker = threading.Thread(target=server.run, daemon=True)
    worker.start()
    for _ in range(300):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{settings.port}"
    server.should_exit = True
    worker.join(30)


async def test_a_signed_slack_button_answers_the_approval_as_the_mapped_person_and_the_workflow_goes_on(
    executor: Executor, producer: EventProducer, results: Tap, pool: str, chat: str, thread: Thread,
    center: str, people: dict[str, str],
) -> None:  # fmt: skip
    request = request_event(pool, "test.branches-approval", {"host": "web7"}, kind="workflow")
    await send_request(producer, request)
    (waiting,) = await results.expect("whale.workflow.task.waiting", request_id=request.id, task="gate")
    approval = f"{waiting.data['run_id']}.gate"
    headers = {"Authorization": f"Bearer {people['vic']}"}
    async with httpx.AsyncClient(base_url=center, headers=headers) as viewer:
        for _ in range(300):  # the event center's view of the executor state shows it
            if (await viewer.get(f"/approvals/{approval}")).status_code == 200:
                break
            await asyncio.sleep(0.2)
    stranger = await asyncio.to_thread(button, chat, thread, "U-EVE", "approve", approval)
    assert stranger.status_code == 200
    assert "not mapped to a Whale identity" in await thread.answer(1)
    as_viewer = await asyncio.to_thread(button, chat, thread, "U-VIC", "approve", approval)
    assert as_viewer.status_code == 200
    assert (await thread.answer(2)).startswith(f"Refused for {VIC}")
    clicked = await asyncio.to_thread(button, chat, thread, "U-ANN", "approve", approval)
    assert clicked.status_code == 200
    assert await thread.answer(3) == f"Approved {approval} as {ANN}."
    (end,) = await results.expect("whale.workflow.completed", request_id=request.id)
    assert end.data["output"]["decision"] == f"approved by {ANN}"
    (gate,) = await results.expect("whale.workflow.task.succeeded", request_id=request.id, task="gate")
    assert gate.data["output"]["answered_by"] == {
        "name": ANN, "kind": "person", "role": "operator", "via": "token", "delegate": f"chat-{TAG}"
    }  # fmt: skip


async def test_an_alias_from_slack_runs_the_catalogued_action_as_the_person(
    executor: Executor, results: Tap, pool: str, chat: str, thread: Thread
) -> None:
    said = f"hello {TAG}"
    answer = await asyncio.to_thread(
        slack_call, chat, {"user_id": "U-ANN", "text": f"say '{said}'", "response_url": thread.url}
    )
    assert answer.status_code == 200
    text = await thread.answer(1)
    found = re.search(r"run (act-[0-9a-f-]+)", text)
    assert found, text
    target = {"kind": "action", "name": "test.echo", "pool": pool}
    (done,) = await results.expect("whale.action.succeeded", target=target)
    assert said in json.dumps(done.data["output"])
    refused = await asyncio.to_thread(
        slack_call, chat, {"user_id": "U-VIC", "text": "say no", "response_url": thread.url}
    )
    assert refused.status_code == 200
    assert (await thread.answer(2)).startswith(f"Refused for {VIC}")


async def status_of(client: httpx.AsyncClient, todo: str, status: str) -> dict[str, Any]:
    """The item once the to-do stage applied the change (it answers the API within 10 s, or later)."""
    shown: dict[str, Any] = {}
    for _ in range(300):
        shown = (await client.get(f"/todos/{todo}")).json()
        if shown.get("status") == status:
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"to-do {todo} is not {status}: {shown}")


async def test_a_todo_is_claimed_and_resolved_from_wecom(
    stack: WhaleSettings, center: str, chat: str, people: dict[str, str], tmp_path: Any
) -> None:
    from whale_todo.app import serve
    from whale_todo.settings import Settings as TodoSettings

    stop = asyncio.Event()
    settings = TodoSettings(whale=stack, group=f"test-chat-todo-{TAG}", state=StoreSettings(dir=tmp_path))
    stage = asyncio.create_task(serve(settings, stop))
    headers = {"Authorization": f"Bearer {people['bob']}"}
    try:
        async with httpx.AsyncClient(base_url=center, headers=headers, timeout=30) as bob:
            item: dict[str, Any] = {}
            for _ in range(30):  # until the stage (a new consumer group) has joined and applies it
                opened = await bob.post("/todos", json={"title": f"disk full {TAG}", "key": f"chat-{TAG}"})
                if opened.status_code == 201:
                    item = opened.json()
                    break
            assert item, "the to-do stage did not apply the item"
            todo = item["id"]
            as_viewer = await asyncio.to_thread(wecom_call, chat, "vic", f"claim {todo}")
            assert as_viewer.startswith(f"Refused for {VIC}"), as_viewer
            claimed = await asyncio.to_thread(wecom_call, chat, "bob", f"claim {todo} on it")
            assert claimed == f"Claimed to-do {todo} as {BOB}."
            shown = await status_of(bob, todo, "claimed")
            assert shown["claimed_by"] == BOB, shown
            done = await asyncio.to_thread(wecom_call, chat, "bob", f"resolve {todo} freed 20G")
            assert done == f"Resolved to-do {todo} as {BOB}."
            await status_of(bob, todo, "resolved")
            stranger = await asyncio.to_thread(wecom_call, chat, "eve", f"resolve {todo}")
            assert "not mapped" in stranger
    finally:
        stop.set()
        await stage
