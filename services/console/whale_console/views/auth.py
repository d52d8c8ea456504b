"""Sign-in and sign-out: a personal token (or an OIDC JWT) checked by the event center's ``/whoami``.

The console never decides who someone is: it asks the API with the credential given, keeps that
credential in the sealed session cookie and sends it with every call, so the API's roles apply.
In dev mode (the API's too) the sign-in page signs the visitor in as the API's dev caller at once.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import session as sessions
from whale_console import web
from whale_console.api import Api
from whale_console.metrics import SIGN_INS
from whale_console.session import Sealer, new_session

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this console (no scheme, no other host): an open redirect otherwise."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/todos"


def _signed_in(request: Request, target: str, identity: dict[str, Any], token: str | None) -> Response:
    settings = web.settings_of(request)
    sealer: Sealer = web.state(request).sealer
    session = new_session(
        name=str(identity.get("name", "?")),
        role=str(identity.get("role", "none")),
        token=token,
        via=str(identity.get("via", "token")),
        hours=settings.session_hours,
    )
    response = web.redirect(request, _safe_next(target))
    response.set_cookie(
        sessions.COOKIE,
        sealer.seal(session),
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookie,
        path="/",
    )
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/login")
    return response


async def _whoami(request: Request, token: str | None) -> tuple[dict[str, Any] | None, str]:
    client: httpx.AsyncClient = web.state(request).client
    answer = await Api(client, token).call("GET", "/whoami")
    if answer.ok and isinstance(answer.body, dict):
        return answer.body, ""
    return None, answer.message


def _form(request: Request, *, message: str = "", status: int = 200, target: str = "/todos") -> Response:
    sealer: Sealer = web.state(request).sealer
    nonce = secrets.token_urlsafe(16)
    context = {
        "csrf": sealer.login_csrf(nonce),
        "message": message,
        "next": target,
        "expired": request.query_params.get("expired") == "1",
        "oidc": web.settings_of(request).oidc_token_login,
    }
    response = web.render(request, "login.html", "login", context, status=status)
    response.set_cookie(
        sessions.LOGIN_COOKIE,
        nonce,
        max_age=1800,
        httponly=True,
        samesite="strict",
        secure=web.settings_of(request).secure_cookie,
        path="/login",
    )
    return response


@router.get("/login", include_in_schema=False)
async def login_page(request: Request) -> Response:
    target = _safe_next(request.query_params.get("next"))
    if web.settings_of(request).dev_mode:
        identity, message = await _whoami(request, None)
        if identity is not None:
            return _signed_in(request, target, identity, None)
        return _form(request, message=f"dev mode, but the event center refused: {message}", status=502)
    return _form(request, target=target)


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await web.read_form(request)
    target = _safe_next(form.get("next"))
    sealer: Sealer = web.state(request).sealer
    if not sealer.login_csrf_ok(request.cookies.get(sessions.LOGIN_COOKIE), form.get(sessions.CSRF_FIELD)):
        SIGN_INS.labels("refused").inc()
        return _form(request, message="the sign-in form expired: try again", status=403, target=target)
    token = form.get("token", "").strip()
    if not token:
        SIGN_INS.labels("refused").inc()
        return _form(request, message="token: paste your personal token (wht_...)", status=400, target=target)
    identity, message = await _whoami(request, token)
    if identity is None:
        SIGN_INS.labels("refused").inc()
        return _form(
            request, message=f"the event center refused this token: {message}", status=401, target=target
        )
    SIGN_INS.labels("ok").inc()
    return _signed_in(request, target, identity, token)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    await web.acting(request)
    response = web.redirect(request, "/login")
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    return web.redirect(request, "/todos")
