"""Carrying out a person's command through the event center's HTTP API, as that person.

The chat adapter holds one service token with the ``delegate`` grant and names the mapped person in
``X-Whale-On-Behalf-Of``; the event center applies that person's own role (capped at the adapter's)
and records both in what it writes. So roles and audit keep one path, and the adapter cannot do
what the person could not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from whale.authz import ON_BEHALF_OF
from whale_chat.commands import Command


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer shown in the chat, and how it went (``done``, ``refused``, ``invalid``, ``failed``)."""

    text: str
    outcome: str


class EventCenter:
    def __init__(self, base_url: str, token: str | None, *, timeout: float, transport: Any = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def carry_out(self, person: str, command: Command) -> Outcome:
        path, body = _request(person, command)
        try:
            answer = await self.client.post(path, json=body, headers={ON_BEHALF_OF: person})
        except httpx.HTTPError as exc:
            return Outcome(
                f"The event center did not answer ({type(exc).__name__}); nothing was done.", "failed"
            )
        try:
            doc: Any = answer.json()
        except ValueError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        if answer.status_code < 300:
            return Outcome(_done(person, command, doc), "done")
        message = str(doc.get("message") or answer.reason_phrase)
        if answer.status_code in (401, 403):
            return Outcome(f"Refused for {person}: {message}", "refused")
        if answer.status_code >= 500:
            return Outcome(f"The event center failed ({answer.status_code}): {message}; try again.", "failed")
        return Outcome(f"Not done: {message}", "invalid")


def _request(person: str, command: Command) -> tuple[str, dict[str, Any]]:
    target = quote(command.target, safe="")
    if command.verb in ("approve", "deny"):
        return f"/approvals/{target}", {"decision": command.verb, "comment": command.comment}
    if command.verb in ("claim", "resolve"):
        return f"/todos/{target}/{command.verb}", {"by": person, "comment": command.comment}
    body: dict[str, Any] = {"params": command.params}
    if command.pool:
        body["pool"] = command.pool
    return f"/actions/{target}/run", body


def _done(person: str, command: Command, doc: dict[str, Any]) -> str:
    if command.verb == "approve":
        return f"Approved {command.target} as {person}."
    if command.verb == "deny":
        return f"Denied {command.target} as {person}."
    if command.verb in ("claim", "resolve"):
        return f"{'Claimed' if command.verb == 'claim' else 'Resolved'} to-do {command.target} as {person}."
    return f"Requested {command.target} as {person}: run {doc.get('run_id', '?')}."
