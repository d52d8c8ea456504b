"""The approvals page: pending ones with their context, approve / deny with a comment and a
response form from the schema, the API's refusals (400 beside the field, 403, 409) in place."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import csrf_of, sign_in
from .fake_api import FakeApi

HX = {"HX-Request": "true"}


def test_pending_approvals_show_their_run_task_question_deadline_approvers_and_trigger(
    client: TestClient,
) -> None:
    sign_in(client, "wht_o.operator")
    page = client.get("/approvals")
    assert page.status_code == 200
    text = page.text
    assert "Restart db-01 (r1.gate)?" in text and "/runs/r1" in text and "2026-11-30T11:00:00Z" in text
    assert "any operator" in text and "role admin or higher or otto" in text
    assert "/events/urn%3Atest%2Fbackup/e1" in text and "backup.failed" in text and "/traces/c1" in text
    assert 'href="/approvals"' in text and 'aria-current="page"' in text  # in the menu


def test_a_response_schema_becomes_labelled_fields(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    text = client.get("/approvals/r1.why").text
    assert 'name="response.reason"' in text and 'aria-required="true"' in text
    assert 'name="response.hosts" value="" inputmode="numeric"' in text
    assert 'type="checkbox"' in text and "<option>tonight</option>" in text


def test_an_operator_approves_with_a_comment_in_place(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/approvals").text)
    answer = client.post("/approvals/r1.gate/approve", data={"csrf": csrf, "comment": "go"}, headers=HX)
    assert answer.status_code == 200 and "approved as otto; the workflow continues" in answer.text
    assert 'data-status="answered"' in answer.text and "<form" not in answer.text.split("</dl>")[1]
    assert api.people.sent[-1] == (
        "/approvals/r1.gate",
        {"decision": "approve", "comment": "go", "response": None},
    )


def test_a_response_is_sent_typed_and_the_apis_problems_show_beside_the_fields(
    client: TestClient, api: FakeApi
) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/approvals").text)
    missing = client.post("/approvals/r1.why/deny", data={"csrf": csrf, "response.hosts": "3"})
    assert missing.status_code == 400
    assert 'class="problem"' in missing.text and "&#39;reason&#39; is a required property" in missing.text
    assert 'value="3"' in missing.text  # what was typed is kept
    wrong = client.post(
        "/approvals/r1.why/deny", data={"csrf": csrf, "response.reason": "no", "response.hosts": "x"}
    )
    assert wrong.status_code == 400 and "is not of type" in wrong.text
    ok = client.post(
        "/approvals/r1.why/deny",
        data={"csrf": csrf, "response.reason": "too busy", "response.hosts": "2", "response.urgent": "on",
              "response.window": "tonight"},
    )  # fmt: skip
    assert ok.status_code == 200 and "denied as otto" in ok.text
    assert api.people.sent[-1][1]["response"] == {
        "reason": "too busy",
        "hosts": 2,
        "urgent": True,
        "window": "tonight",
    }


def test_a_person_who_may_not_answer_sees_it_disabled_and_the_api_refusal(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    page = client.get("/approvals/r1.boss")
    assert 'disabled title="only the-boss may answer"' in page.text
    answer = client.post("/approvals/r1.boss/approve", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 403 and "may not answer this approval" in answer.text


def test_an_answered_approval_is_refused_with_409(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/approvals").text)
    client.post("/approvals/r1.gate/approve", data={"csrf": csrf})
    again = client.post("/approvals/r1.gate/deny", data={"csrf": csrf}, headers=HX)
    assert again.status_code == 200 and "approved, not pending" in again.text and 'role="alert"' in again.text
    assert client.post("/approvals/r1.gate/deny", data={"csrf": csrf}).status_code == 409


def test_a_viewer_sees_the_buttons_disabled_and_cannot_answer(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/approvals")
    assert 'disabled title="needs the operator role"' in page.text
    answer = client.post("/approvals/r1.gate/approve", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 403 and api.people.approvals["r1.gate"]["status"] == "pending"


def test_an_answer_without_the_csrf_token_is_refused(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    answer = client.post("/approvals/r1.gate/approve", data={"comment": "x"})
    assert answer.status_code == 403 and not api.people.sent
