"""Running a catalogued action from a to-do: the choice, the params form from its schema, the
API's answer in place (202 the run's link; 400 beside the fields; 404 and 403 as messages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from whale_console.app import create_app
from whale_console.settings import Settings

from .conftest import csrf_of, sign_in
from .fake_api import FakeApi

DISK = "action:ops:disk.clean"
SCHEMA = {
    "type": "object",
    "required": ["host"],
    "properties": {
        "host": {"type": "string", "title": "Host"},
        "keep_days": {"type": "integer", "description": "days of logs kept"},
    },
}


class Catalog:
    async def start(self, timeout: float = 60.0) -> None:
        return None

    def items(self) -> dict[str, Any]:
        return {
            "ops": {
                "actions": [{"name": "disk.clean", "kind": "python", "params_schema": SCHEMA}],
                "workflows": [{"name": "restart", "description": "restart a host", "params_schema": {}}],
            }
        }


@pytest.fixture
def client(api: FakeApi) -> Iterator[TestClient]:
    app = create_app(
        Settings(session_secret=SecretStr("unit-test-secret")), transport=api.transport(), catalog=Catalog()
    )
    with TestClient(app, follow_redirects=False) as found:
        yield found


def run(client: TestClient, target: str, **fields: str) -> Any:
    csrf = csrf_of(client.get(f"/todos/t1?target={target}").text)
    return client.post("/todos/t1/run", data={"csrf": csrf, "target": target, **fields})


def test_the_todo_page_offers_every_catalogued_action_and_workflow(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    text = client.get("/todos/t1").text
    assert f'value="{DISK}"' in text and "disk.clean (action, pool ops)" in text
    assert "restart (workflow, pool ops)" in text and 'name="params.host"' not in text


def test_a_chosen_action_gets_a_form_from_its_params_schema(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    text = client.get(f"/todos/t1?target={DISK}").text
    assert 'name="params.host"' in text and 'aria-required="true"' in text
    assert 'name="params.keep_days" value="" inputmode="numeric"' in text and "days of logs kept" in text
    assert "<code>e1</code>" in text  # the cause: the to-do's event
    workflow = client.get("/todos/t1?target=workflow:ops:restart").text
    assert 'name="params_json"' in workflow  # no properties: a JSON box


def test_a_run_is_sent_typed_with_the_todos_event_as_cause_and_links_the_run(
    client: TestClient, api: FakeApi
) -> None:
    sign_in(client, "wht_o.operator")
    answer = run(client, DISK, **{"params.host": "db-01", "params.keep_days": "7"})
    assert answer.status_code == 200
    assert 'href="/runs/action-abc"' in answer.text and "disk.clean requested as otto" in answer.text
    assert api.runs_requested[-1] == (
        "disk.clean",
        {"params": {"host": "db-01", "keep_days": 7}, "cause": "e1", "pool": "ops", "kind": "action"},
    )


def test_the_apis_problems_show_beside_the_fields_and_what_was_typed_is_kept(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    missing = run(client, DISK, **{"params.keep_days": "3"})
    assert missing.status_code == 400 and 'id="run-p-1-err"' in missing.text
    assert "&#39;host&#39; is a required property" in missing.text and 'value="3"' in missing.text
    wrong = run(client, DISK, **{"params.host": "db-01", "params.keep_days": "x"})
    assert wrong.status_code == 400 and 'id="run-p-2-err"' in wrong.text
    assert "is not of type" in wrong.text


def test_a_json_box_that_is_not_json_is_refused_before_sending(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    answer = run(client, "workflow:ops:restart", params_json="{nope")
    assert answer.status_code == 400 and "not JSON" in answer.text and api.runs_requested == []


def test_an_unknown_action_is_refused_in_place(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    answer = run(client, "workflow:ops:restart", params_json='{"host": "db-01"}')
    assert answer.status_code == 404 and "no catalogued action or workflow" in answer.text
    assert api.runs_requested[-1][1]["params"] == {"host": "db-01"}
    bogus = run(client, "action:ops:nothing")
    assert bogus.status_code == 400 and "choose a catalogued action" in bogus.text


def test_htmx_gets_the_section_back_with_the_refusal_inside(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/todos/t1").text)
    answer = client.post("/todos/t1/run", data={"csrf": csrf, "target": DISK}, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer.text.lstrip().startswith("<section")
    assert 'class="problem"' in answer.text


def test_a_viewer_sees_the_form_disabled_with_why_and_the_api_refuses_them(
    client: TestClient, api: FakeApi
) -> None:
    sign_in(client, "wht_v.viewer")
    text = client.get(f"/todos/t1?target={DISK}").text
    assert 'disabled title="needs the operator role"' in text
    answer = run(client, DISK, **{"params.host": "db-01"})
    assert answer.status_code == 403 and "this needs operator" in answer.text


def test_a_run_without_the_csrf_token_is_refused(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    answer = client.post("/todos/t1/run", data={"target": DISK, "params.host": "db-01"})
    assert answer.status_code == 403 and api.runs_requested == []
