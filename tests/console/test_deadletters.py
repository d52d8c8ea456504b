"""The dead-letters page: the letters of ``GET /dlq``, redrive one (409 a second time) or a filter
(redriven and skipped shown), operators only, CSRF checked."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import csrf_of, sign_in
from .fake_api import FakeApi


def test_letters_show_their_reason_origin_and_a_redrive_button(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    text = client.get("/dead-letters?reason=render").text
    assert "render failed" in text and "whale.events [0] @ 7" in text and "whale-rule-engine" in text
    assert 'action="/dead-letters/whale.events-0-7/redrive"' in text
    assert "no redrive" not in text.lower()


def test_an_operator_redrives_one_letter_once(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/dead-letters").text)
    first = client.post("/dead-letters/whale.events-0-7/redrive", data={"csrf": csrf})
    assert (
        first.status_code == 200 and "redrive-whale.events-0-7" in first.text and "whale.ingest" in first.text
    )
    again = client.post("/dead-letters/whale.events-0-7/redrive", data={"csrf": csrf})
    assert again.status_code == 409 and "redriven already" in again.text


def test_redrive_filtered_sends_the_filter_and_shows_redriven_and_skipped(
    client: TestClient, api: FakeApi
) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/dead-letters").text)
    answer = client.post(
        "/dead-letters/redrive",
        data={"csrf": csrf, "reason": "render", "topic": "whale.events", "limit": "10"},
    )
    assert answer.status_code == 200 and "redriven 1, skipped 0" in answer.text
    assert api.people.sent[-1] == ("/dlq/redrive", {"reason": "render", "topic": "whale.events", "limit": 10})
    again = client.post("/dead-letters/redrive", data={"csrf": csrf, "reason": "render"})
    assert "redriven 0, skipped 1" in again.text and "redriven already" in again.text


def test_redrive_filtered_needs_a_filter_or_every_and_a_sane_limit(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/dead-letters").text)
    assert client.post("/dead-letters/redrive", data={"csrf": csrf}).status_code == 400
    bad = client.post("/dead-letters/redrive", data={"csrf": csrf, "reason": "x", "limit": "0"})
    assert bad.status_code == 400 and "limit" in bad.text
    assert not api.people.sent
    every = client.post("/dead-letters/redrive", data={"csrf": csrf, "all": "on", "limit": "5"})
    assert every.status_code == 200 and api.people.sent[-1][1] == {"limit": 5, "all": True}


def test_a_viewer_sees_redrive_disabled_and_is_refused(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/dead-letters")
    assert 'disabled title="needs the operator role"' in page.text
    answer = client.post("/dead-letters/whale.events-0-7/redrive", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 403 and not api.people.redriven
    assert client.post("/dead-letters/redrive", data={"reason": "x"}).status_code == 403  # no CSRF
