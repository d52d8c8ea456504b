"""The console's one way to the event center: its HTTP API, with the signed-in person's credential.

Every page reads and acts through :class:`Api`, so the API's own roles, validation and audit apply
to what a person does in the console exactly as to what they do with ``curl`` or the CLI.
"""

from __future__ import annotations

from typing import Any

import httpx

from whale_console.errors import ApiRefused, ApiUnreachable
from whale_console.metrics import API_CALLS


class Answer:
    """An API answer: its status and JSON body (``{}`` when it had none)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return f"the event center answered {self.status}"

    @property
    def problems(self) -> list[dict[str, str]]:
        found = self.body.get("problems") if isinstance(self.body, dict) else None
        return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


class Api:
    """Calls the event center as one person (``token``; None sends no credential: dev mode)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """The answer whatever its status; :class:`ApiUnreachable` when there was none."""
        try:
            response = await self.client.request(
                method, path, params=params, json=json, headers={**self._headers(), **(headers or {})}
            )
        except httpx.HTTPError as exc:
            API_CALLS.labels(method, "unreachable").inc()
            raise ApiUnreachable(f"the event center did not answer: {type(exc).__name__}") from None
        API_CALLS.labels(method, f"{response.status_code // 100}xx").inc()
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text[:500]}
        return Answer(response.status_code, body)

    async def get(self, path: str, params: Any = None) -> Any:
        """The body of a successful GET; :class:`ApiRefused` otherwise."""
        answer = await self.call("GET", path, params=params)
        if not answer.ok:
            raise ApiRefused(answer.status, answer.body)
        return answer.body

    async def maybe(self, path: str, params: Any = None) -> Answer:
        """A GET whose refusal the page shows in place (404 of a missing event, 400 of a filter)."""
        return await self.call("GET", path, params=params)
