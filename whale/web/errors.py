"""One HTTP error body for every Whale API, and the handlers that produce it.

Every error answer, whatever raised it, is::

    {"error": "<code>", "message": "<for a person>", "problems": [{"field", "message"}], "retryable": bool}

:func:`install_error_handlers` maps onto that body:

* a :class:`~whale.errors.WhaleError`: its ``status`` and ``body()`` (``Retry-After`` on retryable
  429/503 answers);
* FastAPI's request validation: 400 ``invalid_request`` with one problem per field
  (``query.limit``, ``body.by``), as the event center already answers invalid events with 400;
  the OpenAPI document says 400 with this body instead of FastAPI's own 422;
* Starlette's ``HTTPException`` (unknown route 404, wrong method 405): its status, code from it;
* anything else: 500 ``internal_error`` with a fixed message; the traceback goes to the log only.

An endpoint that answers ahead of the app's middleware (the event center's ``POST /events``) builds the
same answers with :func:`whale_error_response` and :func:`crash_response`.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whale.errors import InvalidRequest, Problem, WhaleError
from whale.safe_json import safe

log = structlog.get_logger(__name__)

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "message", "problems", "retryable"],
    "properties": {
        "error": {"type": "string", "description": "stable machine code, e.g. invalid_request"},
        "message": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "retryable": {"type": "boolean"},
    },
}
_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "saturated",
    503: "unavailable",
}


class SafeJSONResponse(JSONResponse):
    """A JSON answer whose strings are all encodable: an unpaired surrogate echoed from a request
    (``"\\ud800"``) is written escaped instead of raising ``UnicodeEncodeError`` (a 500)."""

    def render(self, content: Any) -> bytes:
        return super().render(safe(content))


def error_body(
    code: str, message: str, problems: list[Problem] | None = None, retryable: bool = False
) -> dict[str, Any]:
    """The one error body (for answers built without raising, e.g. per event of a batch)."""
    return {"error": code, "message": message, "problems": problems or [], "retryable": retryable}


def validation_problems(exc: RequestValidationError) -> list[Problem]:
    """One ``{"field", "message"}`` per invalid field; ``field`` is the location joined by dots."""
    return [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())) or "request",
            "message": str(err.get("msg", "")),
        }
        for err in exc.errors()
    ]


def whale_error_response(exc: WhaleError, retry_after: float | None = None) -> JSONResponse:
    """The answer to a :class:`~whale.errors.WhaleError`: its ``status`` and ``body()``, ``Retry-After``
    (seconds) on a retryable 429/503 that does not set it itself; a 5xx is logged."""
    headers = dict(exc.headers)
    if retry_after is not None and exc.retryable and exc.status in (429, 503):
        headers.setdefault("Retry-After", f"{retry_after:g}")
    if exc.status >= 500:
        log.warning("request_failed", error=exc.code, message=exc.message)
    return SafeJSONResponse(exc.body(), status_code=exc.status, headers=headers)


def crash_response(scope: Scope) -> JSONResponse:
    """The 500 for an unexpected exception (call it in the ``except`` block: the traceback is
    logged); nothing internal is answered."""
    log.exception("request_crashed", method=scope.get("method"), path=scope.get("path"))
    body = error_body("internal_error", "internal error; the service logged the details")
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI, *, retry_after: float | None = None) -> None:
    """Make every error answer of ``app`` the one body; ``retry_after`` (seconds) is sent as
    ``Retry-After`` on retryable 429 and 503 answers that do not set it themselves."""

    async def on_whale_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WhaleError)
        return whale_error_response(exc, retry_after)

    async def on_invalid_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = validation_problems(exc)
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        error = InvalidRequest(f"invalid request: {text}", problems)
        return SafeJSONResponse(error.body(), status_code=error.status)

    async def on_http_exception(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        body = error_body(code, message, retryable=exc.status_code in (429, 503))
        return SafeJSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(WhaleError, on_whale_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_middleware(_Unexpected)
    _document(app)


class _Unexpected:
    """Any other exception: 500 in the one body, the traceback logged, nothing internal answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            answer = crash_response(scope)
            if started:
                raise
            await answer(scope, receive, send)


def _document(app: FastAPI) -> None:
    """The OpenAPI document says what the handlers do: 400 with the error body, not FastAPI's 422."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        answer = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                automatic = responses.get("422", {}).get("description") == "Validation Error"
                if automatic and responses.pop("422", None) is not None:  # an app's own 422 stays
                    responses.setdefault("400", {"description": "Invalid request"})
                    responses["400"].setdefault("content", answer)
        if "#/components/schemas/HTTPValidationError" not in json.dumps(schema.get("paths", {})):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
