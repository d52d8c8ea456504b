"""``whale run chat``: Slack and WeCom callbacks become approvals, to-do changes and action runs.

``POST /slack`` takes Slack's slash commands and button clicks (signing-secret checked); the
answer is posted to the request's ``response_url`` (the thread it came from). ``GET /wecom`` answers
WeCom's URL check and ``POST /wecom`` its messages (signature checked, AES decrypted); the answer is
the encrypted passive reply. A platform without credentials answers 404. Each sender is mapped to a
Whale identity (the chat file's ``users``); the command is carried out through the event center's
API as that identity (:mod:`whale_chat.center`), so its role decides.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import structlog
import uvicorn
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from whale.errors import WhaleError
from whale.eventloop import uvicorn_options
from whale.logging import configure_logging
from whale.metrics import process_registry
from whale.web.errors import install_error_handlers
from whale.web.health import install_health
from whale_chat import commands, metrics, slack, wecom
from whale_chat.center import EventCenter, Outcome
from whale_chat.config import ChatConfig
from whale_chat.errors import BadCallback, NotConfigured
from whale_chat.replay import ReplayGuard
from whale_chat.settings import Settings

log = structlog.get_logger(__name__)


async def read_body(request: Request, limit: int) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadCallback(f"the callback exceeds {limit} bytes", field="body")
    return body


class Chat:
    """What both platforms share: who is who, what a line means, carrying it out."""

    def __init__(
        self, settings: Settings, config: ChatConfig, center: EventCenter, responder: httpx.AsyncClient
    ) -> None:
        self.settings = settings
        self.config = config
        self.center = center
        self.responder = responder  # posts answers to Slack's response_url
        self.guard = ReplayGuard(settings.window_seconds)
        self.crypto = (
            wecom.WeComCrypto(
                settings.wecom_token.get_secret_value(),
                settings.wecom_aes_key.get_secret_value(),
                settings.wecom_corp_id,
            )
            if settings.wecom_token and settings.wecom_aes_key and settings.wecom_corp_id
            else None
        )

    async def answer(self, platform: str, user: str, text: str) -> str:
        verb = "unknown"
        try:
            command = commands.parse(text, self.config.aliases)
            verb = command.verb
            person = self.config.identity(platform, user)
            if command.verb == "help":
                outcome = Outcome(self.help(), "done")
            elif person is None:
                outcome = Outcome(
                    f"Your {platform} account ({user}) is not mapped to a Whale identity: nothing was done.",
                    "unmapped",
                )
            else:
                outcome = await self.center.carry_out(person, command)
                log.info("chat_command", platform=platform, user=user, identity=person, verb=verb,
                         target=command.target, outcome=outcome.outcome)  # fmt: skip
        except commands.Unknown as exc:
            outcome = Outcome(str(exc), "invalid")
        metrics.COMMANDS.labels(platform, verb, outcome.outcome).inc()
        return outcome.text

    def help(self) -> str:
        formats = "; ".join(a.format for a in self.config.aliases)
        return commands.HELP + (f". Aliases: {formats}" if formats else "")


def get_chat(request: Request) -> Chat:
    """The app's :class:`Chat` (set by :func:`create_app`)."""
    chat: Chat = request.app.state.chat
    return chat


router = APIRouter()


@router.post("/slack", summary="Slack slash commands and button clicks (signing secret checked)")
async def on_slack(
    request: Request, background: BackgroundTasks, chat: Annotated[Chat, Depends(get_chat)]
) -> Response:
    settings = chat.settings
    secret = settings.slack_signing_secret
    if secret is None:
        raise NotConfigured(
            "Slack is not configured here (WHALE_CHAT_SLACK_SIGNING_SECRET)", field="platform"
        )
    body = await read_body(request, settings.max_body)
    headers = {k.lower(): v for k, v in request.headers.items()}
    slack.verify(secret.get_secret_value().encode(), headers, body, window=settings.window_seconds,
                 guard=chat.guard)  # fmt: skip
    asked = slack.parse(body)
    url = asked.response_url
    if url is not None and urlsplit(url).hostname not in settings.slack_response_hosts:
        raise BadCallback(
            f"response_url's host is not one of {settings.slack_response_hosts}", field="response_url"
        )
    if url is None:  # nowhere to post: answer in the HTTP response
        return JSONResponse(
            {"response_type": "ephemeral", "text": await chat.answer("slack", asked.user, asked.text)}
        )
    background.add_task(_answer_slack, chat, asked, url)
    return Response(status_code=200)


@router.get(
    "/wecom", summary="WeCom's callback URL check (echostr decrypted)", response_class=PlainTextResponse
)
async def wecom_check(
    chat: Annotated[Chat, Depends(get_chat)],
    msg_signature: str = Query(""),
    timestamp: str = Query(""),
    nonce: str = Query(""),
    echostr: str = Query(""),
) -> PlainTextResponse:
    sealed = _crypto(chat.crypto)
    echo = echostr.replace(" ", "+")
    sealed.verify(msg_signature, timestamp, nonce, echo, window=chat.settings.window_seconds)
    return PlainTextResponse(sealed.decrypt(echo))


@router.post("/wecom", summary="WeCom messages (signature checked, decrypted; the reply encrypted)")
async def on_wecom(
    request: Request,
    chat: Annotated[Chat, Depends(get_chat)],
    msg_signature: str = Query(""),
    timestamp: str = Query(""),
    nonce: str = Query(""),
) -> Response:
    sealed = _crypto(chat.crypto)
    body = await read_body(request, chat.settings.max_body)
    encrypted = wecom.encrypted_of(body)
    sealed.verify(
        msg_signature, timestamp, nonce, encrypted, window=chat.settings.window_seconds, guard=chat.guard
    )
    message = wecom.parse_message(sealed.decrypt(encrypted))
    if message.msg_type != "text":
        return PlainTextResponse("")  # events (enter chat, clicks on menus): nothing to answer
    text = await chat.answer("wecom", message.user, message.text)
    reply = sealed.reply(wecom.text_reply(message.user, message.corp, text), timestamp, nonce)
    return Response(reply, media_type="application/xml")


async def count_callbacks(request: Request, call_next: Any) -> Response:
    """Callbacks per platform and outcome (answered, refused, invalid)."""
    response: Response = await call_next(request)
    platform = request.url.path.strip("/")
    if platform in ("slack", "wecom"):
        outcome = "answered" if response.status_code < 300 else (
            "refused" if response.status_code in (401, 403) else "invalid")  # fmt: skip
        metrics.CALLBACKS.labels(platform, outcome).inc()
    return response


def create_app(
    settings: Settings, config: ChatConfig, center: EventCenter, responder: httpx.AsyncClient | None = None
) -> FastAPI:
    chat = Chat(settings, config, center, responder or httpx.AsyncClient(timeout=settings.timeout_seconds))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await center.close()
            await chat.responder.aclose()

    app = FastAPI(title="Whale chat adapter", version="1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.middleware("http")(count_callbacks)
    app.state.chat = chat
    app.include_router(router)

    async def center_up() -> bool:
        try:
            return (await center.client.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    install_health(app, process_registry(metrics.FAMILIES), {"event-center": center_up})
    return app


def _crypto(crypto: wecom.WeComCrypto | None) -> wecom.WeComCrypto:
    if crypto is None:
        raise NotConfigured(
            "WeCom is not configured here (WHALE_CHAT_WECOM_TOKEN, _AES_KEY, _CORP_ID)", field="platform"
        )
    return crypto


async def _answer_slack(chat: Chat, asked: slack.SlackRequest, url: str) -> None:
    text = await chat.answer("slack", asked.user, asked.text)
    message = {"response_type": "in_channel", "replace_original": False, "text": text}
    try:
        answer = await chat.responder.post(url, json=message)
        if answer.status_code >= 300:
            log.warning("slack_response_refused", status=answer.status_code)
    except httpx.HTTPError as exc:
        log.warning("slack_response_failed", error=type(exc).__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whale run chat", description="Whale chat adapter (Slack, WeCom)")
    parser.add_argument("--host", help="listen address (default WHALE_CHAT_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default WHALE_CHAT_PORT)")
    args = parser.parse_args(argv or [])
    settings = Settings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.whale, service="chat")
    try:
        config = ChatConfig.load(settings.config)
        token = settings.api_token()
        center = EventCenter(settings.event_center_url, token, timeout=settings.timeout_seconds)
        app = create_app(settings, config, center)
    except (WhaleError, OSError, ValueError) as exc:
        log.error("chat_config_invalid", error=str(exc))
        return 2
    if token is None:
        log.warning(
            "no_token", message="WHALE_CHAT_TOKEN is not set: the event center will refuse every command"
        )
    log.info("chat_listening", host=settings.host, port=settings.port,
             slack=settings.slack_signing_secret is not None, wecom=settings.wecom_token is not None)  # fmt: skip
    loop_options = uvicorn_options(settings.whale.event_loop, settings.whale.http_parser)
    uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                  access_log=False, **loop_options)).run()  # fmt: skip
    return 0
