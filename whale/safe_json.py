"""JSON answers that never fail on hostile text: an unpaired surrogate (``"\\ud800"`` in a request)
is written escaped instead of raising ``UnicodeEncodeError`` (a 500) while the answer is rendered."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from whale.errors import EventError


def safe_text(text: str) -> str:
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe(value: Any) -> Any:
    """A copy of a JSON-like value whose strings (keys too) can all be encoded as UTF-8."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe(k): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    return value


async def event_error(_: Request, exc: Exception) -> JSONResponse:
    """An event Whale would build from a request is invalid (e.g. a to-do's details nested too
    deeply): the client's input is at fault, so 400 with the problems, never 500."""
    problems = exc.problems if isinstance(exc, EventError) else []
    body = {"error": "invalid_event", "message": str(exc), "problems": problems}
    return JSONResponse(safe(body), status_code=400)


async def request_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 answer (``detail`` lists each error), safe for any input it echoes."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": safe(jsonable_encoder(errors))}, status_code=422)
