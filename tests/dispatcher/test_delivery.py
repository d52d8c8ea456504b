"""Push delivery: binary mode headers, backoff with jitter, retries, permanent refusals, limits, pause."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from whale_dispatcher.delivery import backoff, binary_request, deliver

from whale.cloudevent import CloudEvent
from whale.subscriptions import Subscription

EVENT = CloudEvent.create(
    type="test.thing.happened",
    source="/test",
    subject="k1",
    data={"n": 1},
    correlationid="c-1",
    traceparent="00-ab-cd-01",
)


def _sub(**extra: object) -> Subscription:
    return Subscription.model_validate({"id": "s1", "endpoint": "http://receiver.test/hook", **extra})


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_body() -> None:
    headers, body = binary_request(EVENT, _sub(headers={"X-Team": "ops"}))
    assert headers["ce-id"] == EVENT.id
    assert headers["ce-type"] == "test.thing.happened"
    assert headers["ce-source"] == "/test"
    assert headers["ce-subject"] == "k1"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-correlationid"] == "c-1"
    assert headers["ce-traceparent"] == "00-ab-cd-01"
    assert headers["content-type"] == "application/json"
    assert headers["X-Team"] == "ops"
    assert body == b'{"n":1}'


def test_header_values_outside_printable_ascii_are_percent_encoded() -> None:
    event = CloudEvent.create(type="t", source="/s", subject="caf\u00e9 %")
    headers, _ = binary_request(event, _sub())
    assert headers["ce-subject"] == "caf%C3%A9 %25"


def test_a_secret_signs_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PUSH_SECRET", "k")
    headers, body = binary_request(EVENT, _sub(secret_env="TEST_PUSH_SECRET"))
    import hashlib
    import hmac

    assert headers["x-whale-signature"] == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert [backoff(n, 0.5, 4.0, lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff(3, 0.5, 4.0, lambda: 0.0) == 1.0


class Endpoint:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        status = self.statuses[min(self.calls - 1, len(self.statuses) - 1)]
        return httpx.Response(status)


async def _deliver(endpoint: Endpoint, sub: Subscription) -> tuple[bool, int, str, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def never_paused() -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        outcome = await deliver(client, EVENT, lambda: sub, wait_if_paused=never_paused, sleep=sleep)
    return outcome.delivered, outcome.attempts, outcome.reason, slept


async def test_a_failing_endpoint_is_retried_until_it_answers_2xx() -> None:
    delivered, attempts, _, slept = await _deliver(Endpoint([503, 500, 429, 202]), _sub())
    assert (delivered, attempts, len(slept)) == (True, 4, 3)


async def test_after_max_attempts_the_delivery_fails_with_the_reason() -> None:
    delivered, attempts, reason, _ = await _deliver(Endpoint([503]), _sub(max_attempts=3))
    assert (delivered, attempts) == (False, 3)
    assert "503 after 3 attempts" in reason


async def test_a_permanent_refusal_is_not_retried() -> None:
    delivered, attempts, reason, _ = await _deliver(Endpoint([400]), _sub())
    assert (delivered, attempts) == (False, 1)
    assert "not retryable" in reason


async def test_the_time_limit_stops_retries() -> None:
    delivered, attempts, reason, _ = await _deliver(
        Endpoint([503]), _sub(max_age=1.0, backoff_initial=0.4, max_attempts=100)
    )
    assert not delivered and attempts < 100
    assert "gave up after 1s" in reason


async def test_no_attempt_is_made_while_paused() -> None:
    resumed = asyncio.Event()
    endpoint = Endpoint([200])

    async def wait_if_paused() -> None:
        await resumed.wait()

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        task = asyncio.create_task(deliver(client, EVENT, _sub, wait_if_paused=wait_if_paused))
        await asyncio.sleep(0.05)
        assert endpoint.calls == 0
        resumed.set()
        assert (await task).delivered
    assert endpoint.calls == 1
