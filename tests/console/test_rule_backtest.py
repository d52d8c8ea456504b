"""A rule's backtest: stored events from the API's search (paged, capped), the rule's matching,
per-bucket counts drawn as bars, and what its throttle would have suppressed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from whale_console import backtest
from whale_console.api import Api

from .conftest import sign_in
from .fake_api import FakeApi


def stored(minutes_ago: int, subject: str, type_: str = "disk.full", n: int = 0) -> dict[str, Any]:
    when = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"specversion": "1.0", "id": f"d{minutes_ago}-{n}", "source": "urn:t", "type": type_,
             "subject": subject, "time": when}  # fmt: skip
    return {"kind": "event", "event": event, "topic": "whale.events", "time": when}


@pytest.fixture
def storm(api: FakeApi) -> FakeApi:
    api.rules["disk"]["throttle"] = {"key": "{{ subject }}", "once_within": "1h"}
    api.events = [
        stored(5, "db-01"),
        stored(10, "db-02"),
        stored(20, "db-01"),
        stored(30, "db-01", "backup.failed"),
        stored(40, "db-01"),
        stored(50, "db-01", n=1),
        {"kind": "event", "event": {"id": "broken"}},
    ]
    return api


def test_the_rule_page_offers_a_backtest(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    text = client.get("/rules/disk").text
    assert "origin: topic" not in text  # what GET /rules adds is not part of the rule's YAML
    assert 'action="/rules/disk/backtest"' in text and 'value="24h"' in text and '<option value="7d">' in text


def test_a_backtest_counts_what_would_fire_and_what_the_throttle_would_suppress(
    client: TestClient, storm: FakeApi
) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/rules/disk/backtest?since=1h")
    assert page.status_code == 200
    text = page.text
    assert 'data-would-fire="2"' in text  # db-01 once (throttled once an hour), db-02 once
    assert "suppressed <strong>3</strong>" in text and "(5 of 6 stored events matched)" in text
    assert "1 stored events unreadable" in text
    assert '<svg class="spark" role="img"' in text and "<title>1 fired</title>" in text
    assert "<title>1 suppressed</title>" in text


def test_the_search_asks_for_stored_events_of_the_window(storm: FakeApi) -> None:
    seen: list[httpx.Request] = []

    async def ask() -> None:
        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return storm.handle(request)

        async with httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(handle)) as http:
            await backtest.backtest(Api(http, "wht_v.viewer"), storm.rules["disk"], timedelta(hours=1))

    asyncio.run(ask())
    params = seen[0].url.params
    assert (
        params["kind"] == "event" and params["topic"] == "whale.events" and params["since"] < params["until"]
    )


def test_the_search_is_paged_and_stops_at_the_cap(storm: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backtest, "PAGE", 2)

    async def fetch(cap: int) -> tuple[list[Any], bool, str]:
        async with httpx.AsyncClient(base_url="http://api", transport=storm.transport()) as http:
            now = datetime.now(UTC)
            return await backtest.stored(Api(http, "wht_v.viewer"), now - timedelta(hours=1), now, cap)

    found, capped, error = asyncio.run(fetch(3))
    assert len(found) == 3 and capped and error == ""
    everything, capped, _ = asyncio.run(fetch(100))
    assert len(everything) == 7 and not capped


def test_a_capped_backtest_says_so(
    client: TestClient, storm: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backtest, "PAGE", 2)
    monkeypatch.setattr(backtest, "CAP", 3)
    sign_in(client, "wht_v.viewer")
    text = client.get("/rules/disk/backtest?since=1h").text
    assert "Stopped at the newest 3 events" in text


def test_a_bad_window_is_named(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/rules/disk/backtest?since=forever")
    assert (
        page.status_code == 400 and 'class="problem" id="bt-since-err"' in page.text and "since:" in page.text
    )
    too_long = client.get("/rules/disk/backtest?since=90d")
    assert too_long.status_code == 400 and "at most 31 days" in too_long.text


def test_htmx_gets_the_backtest_section_only(client: TestClient, storm: FakeApi) -> None:
    sign_in(client, "wht_v.viewer")
    answer = client.get("/rules/disk/backtest?since=24h", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.text.lstrip().startswith("<section")


def test_an_unknown_rule_is_the_apis_404(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    assert client.get("/rules/nope/backtest").status_code == 404


def test_simulate_without_a_throttle_fires_on_every_match() -> None:
    end = datetime.now(UTC)
    rule = {
        "id": "r",
        "match": {"field": "type", "equals": "disk.full"},
        "target": {"kind": "action", "name": "x"},
    }
    result = backtest.simulate(
        rule, [stored(1, "a"), stored(2, "a"), stored(7, "b", "other")], end - timedelta(hours=1), end
    )
    assert (result.scanned, result.matched, result.would_fire, result.would_suppress) == (3, 2, 2, 0)
    assert result.fired[-1] == 2  # the newest bucket
