"""Replay on the events page: dry-run by default, the API's answer shown, operators only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import csrf_of, sign_in
from .fake_api import FakeApi


def test_a_replay_is_a_dry_run_by_default_and_its_result_is_shown(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    page = client.get("/events")
    assert '<option value="dry" selected>' in page.text
    answer = client.post(
        "/events/replay",
        data={"csrf": csrf_of(page.text), "since": "2026-11-30T09:00", "type": "backup.failed, disk.full"},
    )
    assert answer.status_code == 200 and "replay-1" in answer.text and "1 event replayed" in answer.text
    assert api.people.sent[-1] == (
        "/replays",
        {
            "since": "2026-11-30T09:00:00+00:00",
            "mode": "dry",
            "limit": 1000,
            "type": ["backup.failed", "disk.full"],
        },
    )


def test_a_live_replay_is_sent_live(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/events").text)
    client.post(
        "/events/replay", data={"csrf": csrf, "since": "2026-11-30T09:00", "mode": "live", "limit": "5"}
    )
    assert api.people.sent[-1][1]["mode"] == "live" and api.people.sent[-1][1]["limit"] == 5


def test_a_replay_needs_since_and_a_sane_limit(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/events").text)
    assert client.post("/events/replay", data={"csrf": csrf}).status_code == 400
    bad = client.post("/events/replay", data={"csrf": csrf, "since": "2026-11-30T09:00", "limit": "99999"})
    assert bad.status_code == 400 and "limit" in bad.text and not api.people.sent


def test_a_viewer_sees_replay_disabled_and_is_refused(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/events")
    assert 'disabled title="needs the operator role"' in page.text
    answer = client.post("/events/replay", data={"csrf": csrf_of(page.text), "since": "2026-11-30T09:00"})
    assert answer.status_code == 403
    assert client.post("/events/replay", data={"since": "2026-11-30T09:00"}).status_code == 403  # no CSRF
