"""The authorization matrix: every route of every FastAPI app by every kind of caller.

Routes are enumerated from ``app.routes``: a route added without an entry in ``EXPECTED`` fails
``test_every_route_has_a_rule``, and one whose ``require`` differs from its entry fails
``test_routes_require_the_expected_role``. Then each protected route is called by no credential,
an expired, a revoked and an unknown token, JWTs with a wrong audience, expired or from another
issuer, and by a personal token and a JWT of every role: 401, 403 or allowed as the table says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from whale_adapters.app import Components as AdapterComponents
from whale_adapters.app import build_app as build_adapters
from whale_adapters.settings import Settings as AdapterSettings
from whale_chat.app import create_app as build_chat
from whale_chat.center import EventCenter
from whale_chat.config import ChatConfig
from whale_chat.settings import Settings as ChatSettings
from whale_dispatcher.app import Dispatcher
from whale_dispatcher.app import build_app as build_dispatcher
from whale_dispatcher.settings import Settings as DispatcherSettings

from tests.oidc_issuer import LocalIssuer
from whale.authz import Authenticator, AuthSettings, Role, http_routes, route_roles
from whale.oidc import OidcVerifier
from whale.producer import EventProducer
from whale.tokens import ViewTokenBook

from .fakes import PEOPLE, PEOPLE_VIEW, Harness, make_harness

OPEN = "open"  # health probes, metrics and the API description: no identity needed
INGEST = "ingest"  # sender tokens (and people with operator) through their own check
SIGNED = "signed"  # a chat platform's signature; the person's role is checked by the event center

DOCS = {("GET", "/openapi.json"): OPEN, ("GET", "/docs"): OPEN, ("GET", "/docs/oauth2-redirect"): OPEN}
DOCS.update({("GET", "/redoc"): OPEN, ("HEAD", "/openapi.json"): OPEN, ("HEAD", "/docs"): OPEN})
DOCS.update({("HEAD", "/docs/oauth2-redirect"): OPEN, ("HEAD", "/redoc"): OPEN})
PROBES = {("GET", "/healthz"): OPEN, ("GET", "/readyz"): OPEN, ("GET", "/metrics"): OPEN}
SPEC = {("GET", "/openapi.json"): OPEN, ("HEAD", "/openapi.json"): OPEN}  # apps without /docs keep this

EXPECTED: dict[str, dict[tuple[str, str], Role | str]] = {
    "event-center": {
        **DOCS,
        **PROBES,
        ("POST", "/events"): INGEST,
        ("GET", "/events"): Role.viewer,
        ("GET", "/events/{source:path}/{event_id}"): Role.viewer,
        ("GET", "/traces/{correlation_id}"): Role.viewer,
        ("GET", "/schemas"): Role.viewer,
        ("GET", "/schemas/{type_name}"): Role.viewer,
        ("GET", "/schemas/{type_name}/versions/{number}"): Role.viewer,
        ("PUT", "/schemas/{type_name}"): Role.author,
        ("POST", "/schemas/{type_name}/deprecate"): Role.admin,
        ("DELETE", "/schemas/{type_name}"): Role.admin,
        ("GET", "/rules"): Role.viewer,
        ("POST", "/rules/validate"): Role.viewer,
        ("GET", "/rules/{rule_id}"): Role.viewer,
        ("PUT", "/rules/{rule_id}"): Role.author,
        ("DELETE", "/rules/{rule_id}"): Role.author,
        ("GET", "/rules/{rule_id}/versions"): Role.viewer,
        ("GET", "/rules/{rule_id}/versions/{number}"): Role.viewer,
        ("GET", "/rules/{rule_id}/diff"): Role.viewer,
        ("POST", "/rules/{rule_id}/rollback"): Role.author,
        ("GET", "/todos"): Role.viewer,
        ("GET", "/todos/{todo_id}"): Role.viewer,
        ("POST", "/todos"): Role.operator,
        ("POST", "/todos/{todo_id}/claim"): Role.operator,
        ("POST", "/todos/{todo_id}/unclaim"): Role.operator,
        ("POST", "/todos/{todo_id}/comment"): Role.operator,
        ("POST", "/todos/{todo_id}/resolve"): Role.operator,
        ("PATCH", "/todos/{todo_id}"): Role.operator,
        ("POST", "/todos/{todo_id}/reopen"): Role.operator,
        ("GET", "/subscriptions"): Role.viewer,
        ("GET", "/subscriptions/{name}"): Role.viewer,
        ("PUT", "/subscriptions/{name}"): Role.author,
        ("POST", "/subscriptions/{name}/pause"): Role.author,
        ("POST", "/subscriptions/{name}/resume"): Role.author,
        ("DELETE", "/subscriptions/{name}"): Role.author,
        ("GET", "/tokens"): Role.admin,
        ("POST", "/tokens"): Role.admin,
        ("DELETE", "/tokens/{token_id}"): Role.admin,
        ("GET", "/whoami"): Role.viewer,
        ("GET", "/approvals"): Role.viewer,
        ("GET", "/approvals/{approval_id}"): Role.viewer,
        ("POST", "/approvals/{approval_id}"): Role.operator,
        ("GET", "/runs"): Role.viewer,
        ("GET", "/runs/{run_id}"): Role.viewer,
        ("POST", "/runs/{run_id}/cancel"): Role.operator,
        ("POST", "/runs/{run_id}/retry"): Role.operator,
        ("POST", "/runs/{run_id}/pause"): Role.operator,
        ("POST", "/runs/{run_id}/resume"): Role.operator,
        ("GET", "/dlq"): Role.viewer,
        ("GET", "/dlq/{letter_id}"): Role.viewer,
        ("POST", "/dlq/{letter_id}/redrive"): Role.operator,
        ("POST", "/dlq/redrive"): Role.operator,
        ("POST", "/replays"): Role.operator,
        ("POST", "/actions/{name}/run"): Role.operator,
    },
    "dispatcher": {**SPEC, **PROBES, ("GET", "/status"): Role.viewer},
    "adapters": {**SPEC, **PROBES, ("POST", "/alertmanager"): INGEST, ("POST", "/webhooks/{name}"): INGEST},
    "chat": {
        **SPEC,
        **PROBES,
        ("POST", "/slack"): SIGNED,
        ("GET", "/wecom"): SIGNED,
        ("POST", "/wecom"): SIGNED,
    },
}
GROUPS = {"whale-viewers": "viewer", "sre": "operator", "authors": "author", "whale-admins": "admin"}
GROUP_OF = {Role.parse(role): group for group, role in GROUPS.items()}


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    found = LocalIssuer()
    yield found
    found.close()


def auth_settings(issuer: LocalIssuer) -> AuthSettings:
    return AuthSettings(oidc_issuer=issuer.url, oidc_audience="whale", oidc_roles=GROUPS)


@pytest.fixture(scope="module")
def center(issuer: LocalIssuer) -> Iterator[Harness]:
    yield from make_harness(auth=auth_settings(issuer))


@pytest.fixture(scope="module")
def apps(center: Harness, issuer: LocalIssuer) -> dict[str, FastAPI]:
    authenticator = Authenticator(tokens=ViewTokenBook(PEOPLE_VIEW), oidc=OidcVerifier(auth_settings(issuer)))
    dispatcher = Dispatcher(DispatcherSettings(), cast(EventProducer, None), httpx.AsyncClient())
    adapters = build_adapters(AdapterSettings(), AdapterComponents(writer=cast(Any, None)))
    chat = build_chat(
        ChatSettings(slack_signing_secret=SecretStr("s"), wecom_token=SecretStr("t"), wecom_corp_id="c",
                     wecom_aes_key=SecretStr("6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt")),
        ChatConfig(),
        EventCenter("http://127.0.0.1:9", None, timeout=1),
    )  # fmt: skip
    return {
        "event-center": cast(FastAPI, center.client.app),
        "dispatcher": build_dispatcher(dispatcher, authenticator),
        "adapters": adapters,
        "chat": chat,
    }


def all_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {(method, path) for _, path, methods in http_routes(app) for method in methods}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_route_has_a_rule(apps: dict[str, FastAPI], name: str) -> None:
    routes = all_routes(apps[name])
    assert routes - set(EXPECTED[name]) == set(), f"{name}: routes without an authorization rule"
    assert set(EXPECTED[name]) - routes == set(), f"{name}: rules for routes that do not exist"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_routes_require_the_expected_role(apps: dict[str, FastAPI], name: str) -> None:
    declared = route_roles(apps[name])
    for key, expected in EXPECTED[name].items():
        if key in declared:
            assert declared[key] == (expected if isinstance(expected, Role) else None), key


def callers(issuer: LocalIssuer) -> list[tuple[str, str, Role | None]]:
    """(label, Authorization header, role) — role None: the caller must get 401."""
    other = LocalIssuer()
    try:
        foreign = other.token(["whale-admins"])
    finally:
        other.close()
    out: list[tuple[str, str, Role | None]] = [
        ("none", "", None),
        ("malformed", "Basic abc", None),
        ("unknown-token", "Bearer wht_nope.secret", None),
        ("expired-token", f"Bearer {PEOPLE['expired']}", None),
        ("revoked-token", f"Bearer {PEOPLE['revoked']}", None),
        ("jwt-wrong-audience", f"Bearer {issuer.token(['whale-admins'], aud='other')}", None),
        ("jwt-expired", f"Bearer {issuer.token(['whale-admins'], expires_in=-3600)}", None),
        ("jwt-foreign-issuer", f"Bearer {foreign}", None),
        ("jwt-no-group", f"Bearer {issuer.token(['unmapped'])}", Role.none),
    ]
    for role in (Role.viewer, Role.operator, Role.author, Role.admin):
        out.append((f"token-{role.name}", f"Bearer {PEOPLE[role.name]}", role))
        out.append((f"jwt-{role.name}", f"Bearer {issuer.token([GROUP_OF[role]])}", role))
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_protected_route_answers_401_403_or_allows_as_the_table_says(
    apps: dict[str, FastAPI], issuer: LocalIssuer
) -> None:
    who = callers(issuer)
    checked = 0
    for name, table in EXPECTED.items():
        client = TestClient(apps[name])
        for (method, path), needed in table.items():
            if not isinstance(needed, Role) or method == "HEAD":
                continue
            for label, header, role in who:
                body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
                response = client.request(
                    method, concrete(path), json=body, headers={"Authorization": header}
                )
                where = f"{name} {method} {path} as {label}: {response.status_code} {response.text[:200]}"
                if role is None:
                    assert response.status_code == 401, where
                    assert response.headers.get("www-authenticate", "").startswith("Bearer"), where
                elif role < needed:
                    assert response.status_code == 403, where
                else:
                    assert response.status_code not in (401, 403), where
                checked += 1
    assert checked > 400  # 29 protected routes x 17 callers


def test_open_routes_answer_without_credentials(apps: dict[str, FastAPI]) -> None:
    for name in ("event-center", "dispatcher"):
        client = TestClient(apps[name])
        assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": ""}).status_code == 200


def test_chat_callbacks_refuse_requests_without_the_platforms_signature(apps: dict[str, FastAPI]) -> None:
    client = TestClient(apps["chat"])
    for method, path in (("POST", "/slack"), ("GET", "/wecom"), ("POST", "/wecom")):
        answer = client.request(method, path, content=b"<xml><Encrypt>x</Encrypt></xml>")
        assert answer.status_code == 401, (method, path, answer.text)
