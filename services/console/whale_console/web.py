"""What every page shares: the visit (session and API client), forms with CSRF, rendering.

A page handler takes ``visit: Visit = Depends(viewing)`` (a signed-in person; the sign-in page
otherwise) or ``Depends(acting)`` for a form (the CSRF token checked too). Pages render Jinja2
templates (autoescaped); an htmx request (``HX-Request``) gets the fragment it asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import httpx
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from whale_console import session as sessions
from whale_console.api import Api
from whale_console.errors import CsrfRejected, NotSignedIn
from whale_console.metrics import PAGES
from whale_console.nav import NAV
from whale_console.session import Sealer, Session
from whale_console.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 256 * 1024


@dataclass
class Visit:
    """One request of a signed-in person: who they are and the API as them."""

    request: Request
    session: Session
    api: Api

    def may(self, role: str) -> bool:
        return self.session.may(role)


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(TEMPLATES))
    env = found.env
    env.globals["NAV"] = NAV
    env.filters["short"] = lambda text, n=12: (str(text)[:n] + "…") if text and len(str(text)) > n else text
    env.filters["quote"] = lambda text: quote(str(text), safe="")
    return found


def state(request: Request) -> Any:
    return request.app.state


def open_session(request: Request) -> Session | None:
    sealer: Sealer = state(request).sealer
    return sealer.open(request.cookies.get(sessions.COOKIE))


async def viewing(request: Request) -> Visit:
    """The signed-in person (:class:`NotSignedIn` otherwise: the sign-in page)."""
    found = open_session(request)
    if found is None:
        raise NotSignedIn("sign in to use the console")
    client: httpx.AsyncClient = state(request).client
    return Visit(request, found, Api(client, found.token))


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (last value of each field)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRejected("the form is too large", field="form")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


async def acting(request: Request) -> Visit:
    """A signed-in person submitting a form with this session's CSRF token."""
    visit = await viewing(request)
    form = await read_form(request)
    request.state.form = form
    sent = request.headers.get(sessions.CSRF_HEADER) or form.get(sessions.CSRF_FIELD)
    if not sessions.csrf_ok(visit.session, sent):
        raise CsrfRejected(
            "the form's CSRF token is missing or not this session's: reload the page", field="csrf"
        )
    return visit


Viewing = Annotated[Visit, Depends(viewing)]
"""A page's parameter: the signed-in person."""
Acting = Annotated[Visit, Depends(acting)]
"""A form's parameter: the signed-in person, CSRF token checked."""


def form_of(request: Request) -> dict[str, str]:
    form: dict[str, str] = getattr(request.state, "form", {})
    return form


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    page: str,
    context: dict[str, Any],
    *,
    visit: Visit | None = None,
    status: int = 200,
) -> HTMLResponse:
    PAGES.labels(page, "ok" if status < 400 else "error").inc()
    ctx = {"page": page, "visit": visit, "session": visit.session if visit else None, "now": time.time()}
    ctx.update(context)
    found: Jinja2Templates = state(request).templates
    response = found.TemplateResponse(request, template, ctx, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(request: Request, url: str) -> Response:
    """A redirect a browser follows (303) or htmx follows (``HX-Redirect``)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def settings_of(request: Request) -> Settings:
    found: Settings = state(request).settings
    return found


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``{}`` (API bodies are read without trusting their shape)."""
    return value if isinstance(value, dict) else {}
