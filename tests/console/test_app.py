"""The console app in front of a stand-in API: sign-in, session cookie, CSRF, roles, each page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from .conftest import console, csrf_of, sign_in
from .fake_api import FakeApi


def test_a_page_without_a_session_sends_to_the_sign_in_page_and_back(client: TestClient) -> None:
    answer = client.get("/events?type=x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fevents%3Ftype%3Dx"


def test_sign_in_keeps_the_token_in_a_sealed_httponly_samesite_strict_cookie(client: TestClient) -> None:
    page = client.get("/login")
    answer = client.post(
        "/login", data={"token": "wht_o.operator", "csrf": csrf_of(page.text), "next": "/todos"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/todos"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("whale_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "wht_o.operator" not in cookie  # sealed: the token is not readable in the cookie
    todos = client.get("/todos")
    assert todos.status_code == 200 and "otto" in todos.text and "operator" in todos.text


def test_a_refused_token_shows_the_apis_reason_on_the_form(client: TestClient) -> None:
    page = client.get("/login")
    answer = client.post("/login", data={"token": "wht_x.nobody", "csrf": csrf_of(page.text)})
    assert answer.status_code == 401
    assert "unknown token" in answer.text and 'aria-invalid="true"' in answer.text


def test_the_sign_in_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/login")
    answer = client.post("/login", data={"token": "wht_o.operator", "csrf": "forged"})
    assert answer.status_code == 403 and "whale_console=" not in answer.headers.get("set-cookie", "")


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    page = client.get("/login?next=//evil.example/")
    answer = client.post(
        "/login", data={"token": "wht_v.viewer", "csrf": csrf_of(page.text), "next": "//evil.example/"}
    )
    assert answer.headers["location"] == "/todos"


def test_a_forged_or_foreign_cookie_is_no_session(client: TestClient, api: FakeApi) -> None:
    client.cookies.set("whale_console", "not-a-sealed-session")
    assert client.get("/todos").status_code == 303
    with console(api) as other:  # same secret: its sessions open here
        sign_in(other, "wht_v.viewer")
        sealed = other.cookies.get("whale_console")
    from pydantic import SecretStr
    from whale_console.app import create_app
    from whale_console.settings import Settings

    foreign = TestClient(create_app(Settings(session_secret=SecretStr("another")), transport=api.transport()))
    foreign.cookies.set("whale_console", str(sealed))
    assert foreign.get("/todos", follow_redirects=False).status_code == 303


def test_every_call_to_the_api_carries_the_persons_own_token(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_v.viewer")
    client.get("/todos")
    sent = [headers.get("authorization") for method, path, headers in api.calls if path == "/todos"]
    assert sent == ["Bearer wht_v.viewer"]


def test_a_viewer_sees_the_queue_with_the_actions_disabled(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/todos")
    assert "backup.failed on db-01" in page.text and "\u00d72" in page.text
    assert 'disabled title="needs the operator role"' in page.text
    assert "claiming, commenting and resolving need" in page.text


def test_an_operator_claims_comments_and_resolves_in_place(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/todos").text)
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    claimed = client.post("/todos/t1/claim", data={}, headers=htmx)
    assert claimed.status_code == 200 and 'data-status="claimed"' in claimed.text and "otto" in claimed.text
    client.post("/todos/t1/comment", data={"comment": "looking"}, headers=htmx)
    resolved = client.post("/todos/t1/resolve", data={"comment": "fixed"}, headers=htmx)
    assert 'data-status="resolved"' in resolved.text
    assert api.todos["t1"]["comments"][0]["text"] == "looking"
    assert api.todos["t1"]["resolution"] == "fixed"


def test_a_form_without_the_sessions_csrf_token_is_refused(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_o.operator")
    answer = client.post("/todos/t1/claim", data={"csrf": "guess"})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert api.todos["t1"]["status"] == "open"


def test_without_javascript_an_action_redirects_back_to_the_list(client: TestClient) -> None:
    sign_in(client, "wht_o.operator")
    csrf = csrf_of(client.get("/todos").text)
    answer = client.post("/todos/t1/claim", data={"csrf": csrf, "back": "/todos?status=all"})
    assert answer.status_code == 303 and answer.headers["location"] == "/todos?status=all"


def test_a_viewers_action_is_refused_by_the_api_and_the_message_shown(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    csrf = csrf_of(client.get("/todos").text)
    answer = client.post("/todos/t1/claim", data={}, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert "this needs operator" in answer.text


def test_the_event_page_shows_attributes_and_data_and_links_its_trace(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/events/urn:test/backup/e1")
    assert page.status_code == 200
    assert "backup.failed" in page.text and "nightly" in page.text and "/traces/c1" in page.text


def test_the_trace_draws_every_hop_and_marks_the_failure(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/traces/c1")
    assert page.text.count('class="hop-node"') == 3
    assert "ssh refused" in page.text and 'class="node failed"' in page.text
    assert "+3.000 s" in page.text  # the failure came three seconds after the alert


def test_a_rule_with_an_error_is_shown_with_the_apis_problems_next_to_the_text(client: TestClient) -> None:
    sign_in(client, "wht_a.author")
    csrf = csrf_of(client.get("/rules/disk").text)
    text = "id: disk\nmatch: {type: disk.full}\n"
    answer = client.post(
        "/rules/save",
        data={"text": text, "version": "2", "intent": "save"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert 'class="problem"' in answer.text and "target" in answer.text and "Field required" in answer.text
    assert "match: {type: disk.full}" in answer.text  # the text is kept for fixing


def test_yaml_that_does_not_parse_names_the_line(client: TestClient) -> None:
    sign_in(client, "wht_a.author")
    csrf = csrf_of(client.get("/rules/new").text)
    answer = client.post(
        "/rules/save", data={"csrf": csrf, "text": "id: x\nmatch: [unclosed\n", "intent": "save"}
    )
    assert answer.status_code == 400 and "line 3" in answer.text


def test_a_saved_rule_gets_the_next_version(client: TestClient, api: FakeApi) -> None:
    sign_in(client, "wht_a.author")
    csrf = csrf_of(client.get("/rules/disk").text)
    text = "id: disk\nmatch: {field: type, equals: disk.full}\ntarget: {kind: action, name: core.log}\n"
    answer = client.post("/rules/save", data={"csrf": csrf, "text": text, "version": "2", "intent": "save"})
    assert answer.status_code == 200 and "saved as version 3" in answer.text
    assert api.rules["disk"]["version"] == 3


def test_a_viewer_cannot_save_a_rule_but_may_validate(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    page = client.get("/rules/disk")
    assert 'disabled title="needs the author role"' in page.text and "Validate" in page.text
    assert "ada" in page.text  # the version history


def test_explain_shows_each_criterion_of_each_rule_against_the_stored_event(
    client: TestClient, api: FakeApi
) -> None:
    api.rules["backup"] = {
        "id": "backup", "version": 1, "enabled": True,
        "match": {"all": [{"field": "type", "equals": "backup.failed"}, {"field": "data.job", "equals": "weekly"}]},
        "target": {"kind": "action", "name": "core.log"},
    }  # fmt: skip
    sign_in(client, "wht_v.viewer")
    page = client.get("/rules/explain?source=urn:test/backup&id=e1")
    assert page.status_code == 200
    assert "does not match" in page.text and "weekly" in page.text and "nightly" in page.text


def test_every_page_answers_for_a_viewer(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    for path in ("/todos", "/todos/t1", "/events", "/events?live=1", "/events/tail", "/traces", "/rules", "/rules/new",
                 "/rules/explain", "/dead-letters", "/overview", "/catalog", "/schemas", "/subscriptions",
                 "/approvals", "/approvals/r1.why", "/runs", "/runs/r1", "/runs/r2"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert "cdn" not in answer.text.lower()


def test_pages_send_a_strict_content_security_policy(client: TestClient) -> None:
    answer = client.get("/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def test_dev_mode_signs_the_visitor_in_as_the_apis_dev_caller() -> None:
    with console(FakeApi(dev_mode=True), dev_mode=True) as client:
        answer = client.get("/login")
        assert answer.status_code == 303
        assert "dev-mode" in client.get("/todos").text


def test_a_revoked_token_ends_the_session(client: TestClient) -> None:
    sign_in(client, "wht_v.viewer")
    from . import fake_api

    saved = fake_api.TOKENS.pop("wht_v.viewer")
    try:
        answer = client.get("/todos")
    finally:
        fake_api.TOKENS["wht_v.viewer"] = saved
    assert answer.status_code == 303 and answer.headers["location"] == "/login?expired=1"


def test_health_routes_are_open(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert "whale_console_pages_total" in client.get("/metrics").text


OPEN = {"/login", "/healthz", "/readyz", "/metrics", "/static"}


def test_every_route_but_sign_in_and_probes_needs_a_session(client: TestClient, api: FakeApi) -> None:
    """The console's authorization matrix: a route added without the session dependency fails here."""
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

    from whale.authz import http_routes

    assert isinstance(client.app, FastAPI)
    routes = [(p, m) for r, p, m in http_routes(client.app) if isinstance(r, APIRoute) and p not in OPEN]
    assert len(routes) > 15
    for template, methods in routes:
        path = template.replace("{source:path}", "urn:test/backup").replace("{event_id}", "e1")
        path = re.sub(r"\{[^}]+\}", "x", path)
        for method in methods:
            answer = client.request(method, path)
            if template in ("/", "/logout"):
                assert answer.status_code in (303, 403), (method, template)
                continue
            assert answer.status_code == 303, (method, template, answer.status_code)
            assert answer.headers["location"].startswith("/login"), (method, template)
    assert not [c for c in api.calls if c[1] != "/healthz"]  # nothing reached the API


def test_editing_a_directory_rule_saves_an_api_copy_without_if_match(
    client: TestClient, api: FakeApi, tmp_path: Any
) -> None:
    (tmp_path / "r.yaml").write_text(
        "id: from-file\nmatch: {field: type, equals: x}\ntarget: {kind: action, name: core.noop}\n"
    )
    from whale.settings import WhaleSettings

    with console(api, whale=WhaleSettings(rules_dir=tmp_path)) as local:
        sign_in(local, "wht_a.author")
        listed = local.get("/rules")
        assert "from-file" in listed.text and "directory" in listed.text
        page = local.get("/rules/from-file")
        assert 'name="version" value=""' in page.text
        assert "overrides the file" in page.text


def test_the_overview_counts_the_last_hours_events_and_draws_a_chart_per_figure(
    client: TestClient, api: FakeApi
) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    event = {"specversion": "1.0", "id": "f1", "source": "s", "type": "whale.action.failed", "time": now}
    api.events = [{"kind": "event", "event": event, "time": now}]
    sign_in(client, "wht_v.viewer")
    page = client.get("/overview")
    assert page.status_code == 200
    assert "1 failed" in page.text
    assert page.text.count('<svg class="spark"') == 5  # events, started, failed, to-dos, dead letters
