"""The runs pages: the list with filters, one run's tasks and trigger, cancel / pause / resume /
retry offered by state and role (disabled with the reason otherwise), CSRF on each."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import csrf_of, sign_in
from .fake_api import FakeApi


def test_the_list_filters_by_state_and_passes_the_filters_to_the_api(
    client: TestClient, api: FakeApi
) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/runs?state=active&kind=workflow&name=restart")
    assert page.status_code == 200 and "/runs/r1" in page.text and "/runs/r2" not in page.text
    sent = [c for c in api.calls if c[1] == "/runs"]
    assert sent
    assert client.get("/runs?state=nonsense").status_code == 200  # an unknown state is "all"


def test_a_runs_page_shows_each_task_and_the_trigger_with_its_trace(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/runs/r2")
    text = page.text
    assert 'data-task="check" data-status="succeeded"' in text and "120 ms" in text and "3%" in text
    assert 'data-task="gate" data-status="failed"' in text and "ssh refused" in text
    assert "/events/urn%3Atest%2Fbackup/e1" in text and "/traces/c1" in text


def test_a_viewer_sees_every_control_disabled_with_the_reason(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    text = client.get("/runs/r1").text
    assert text.count('disabled title="needs the operator role"') == 4
    assert 'href="/rules/disk"' in text and "v2" in text  # the run's rule as the API names it: id and version


def test_the_state_decides_which_controls_an_operator_gets(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    waiting = client.get("/runs/r1").text
    assert 'disabled title="the run is not paused"' in waiting
    assert "only a failed, cancelled, timed-out or abandoned workflow run can be retried" in waiting
    failed = client.get("/runs/r2").text
    assert 'disabled title="the run has ended (failed)"' in failed


def test_an_operator_cancels_and_retries(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/runs/r1").text)
    cancel = client.post("/runs/r1/cancel", data={"csrf": csrf, "comment": "wrong host"})
    assert cancel.status_code == 200 and "cancel requested" in cancel.text
    assert api.people.sent[-1] == ("/runs/r1/cancel", {"comment": "wrong host"})
    retry = client.post("/runs/r2/retry", data={"csrf": csrf})
    assert retry.status_code == 200 and 'href="/runs/r3"' in retry.text


def test_a_refusal_of_the_api_is_shown_with_its_status(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/runs/r2").text)
    answer = client.post("/runs/r2/pause", data={"csrf": csrf})
    assert answer.status_code == 409 and "has ended (failed)" in answer.text
    assert client.post("/runs/r2/explode", data={"csrf": csrf}).status_code == 400


def test_a_control_without_the_csrf_token_or_by_a_viewer_is_refused(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    assert client.post("/runs/r1/cancel", data={}).status_code == 403 and not api.people.sent
    sign_in(client, "wht_v.viewer")
    csrf = csrf_of(client.get("/runs/r1").text)
    assert client.post("/runs/r1/cancel", data={"csrf": csrf}).status_code == 403
