"""One push delivery: CloudEvents HTTP binary mode over httpx, retried with exponential backoff and
jitter until it succeeds, is refused permanently, or exceeds the attempt or age limit."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from whale.binding import encode_data
from whale.cloudevent import CloudEvent, format_time
from whale.subscriptions import Subscription
from whale_dispatcher import metrics
from whale_dispatcher.errors import DeliveryFailed

RETRYABLE_STATUS = frozenset({408, 425, 429})
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def _header(value: object) -> str:
    """A CloudEvents HTTP header value: printable ASCII kept, the rest percent-encoded."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return quote(text, safe=_SAFE + " ")


def binary_request(event: CloudEvent, sub: Subscription) -> tuple[dict[str, str], bytes]:
    """Headers (``ce-*``, ``content-type``) and body of the event in HTTP binary content mode."""
    headers = dict(sub.headers)
    headers.update(
        {"ce-specversion": event.specversion, "ce-id": _header(event.id), "ce-source": _header(event.source)}
    )
    headers["ce-type"] = _header(event.type)
    if event.subject is not None:
        headers["ce-subject"] = _header(event.subject)
    if event.time is not None:
        headers["ce-time"] = format_time(event.time)
    if event.dataschema is not None:
        headers["ce-dataschema"] = _header(event.dataschema)
    for name, value in event.extensions.items():
        headers[f"ce-{name}"] = _header(value)
    body = encode_data(event) or b""
    if event.datacontenttype is not None:
        headers["content-type"] = event.datacontenttype
    if sub.secret_env:
        secret = os.environ.get(sub.secret_env, "")
        headers["x-whale-signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return headers, body


def backoff(attempt: int, initial: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Delay before attempt ``attempt + 1``: exponential, capped, with equal jitter in [d/2, d]."""
    delay = min(cap, initial * 2.0 ** min(attempt - 1, 30))
    return float(delay / 2 + rand() * delay / 2)


async def attempt(client: httpx.AsyncClient, event: CloudEvent, sub: Subscription) -> None:
    """One HTTP attempt; raises :class:`DeliveryFailed` saying whether a retry may help."""
    headers, body = binary_request(event, sub)
    try:
        response = await client.post(sub.endpoint, content=body, headers=headers, timeout=sub.timeout)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", retryable=True) from None
    if 200 <= response.status_code < 300:
        return
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
    raise DeliveryFailed(
        f"endpoint answered {response.status_code}", endpoint_status=response.status_code, retryable=retryable
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    attempts: int
    reason: str = ""


async def deliver(
    client: httpx.AsyncClient,
    event: CloudEvent,
    current: Callable[[], Subscription],
    *,
    wait_if_paused: Callable[[], Awaitable[None]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """Deliver until success (True) or a limit is reached (False, with the reason to dead-letter).

    ``current()`` gives the subscription's latest state, so an edit (new endpoint, pause) applies
    to the next attempt; while paused no attempt is made."""
    started = time.monotonic()
    count = 0
    while True:
        await wait_if_paused()
        sub = current()
        count += 1
        try:
            await attempt(client, event, sub)
            metrics.ATTEMPTS.labels(subscription=sub.id, outcome="ok").inc()
            return Outcome(True, count)
        except DeliveryFailed as exc:
            metrics.ATTEMPTS.labels(
                subscription=sub.id, outcome="retryable" if exc.retryable else "permanent"
            ).inc()
            if not exc.retryable:
                return Outcome(False, count, f"{sub.endpoint}: {exc.message} (not retryable)")
            if count >= sub.max_attempts:
                return Outcome(False, count, f"{sub.endpoint}: {exc.message} after {count} attempts")
            delay = backoff(count, sub.backoff_initial, sub.backoff_max)
            if time.monotonic() - started + delay > sub.max_age:
                return Outcome(False, count, f"{sub.endpoint}: {exc.message}; gave up after {sub.max_age:g}s")
            await sleep(delay)
