"""OIDC against a real provider: Keycloak (started by this module on loopback) issues access tokens
with the password grant; the event center checks them against Keycloak's JWKS and maps its groups
to roles (alice in whale-admins -> admin, sam in sre -> operator)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.event_center.fakes import Harness, make_harness
from tests.ports import free_port
from whale.authz import AuthSettings, NotAuthenticated, Role
from whale.oidc import OidcVerifier
from whale.settings import WhaleSettings

from .keycloak import Keycloak, install, missing

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # Keycloak starts in 1-5 minutes
ROLES = {"whale-admins": "admin", "sre": "operator"}


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    why = missing()
    if why is not None:
        pytest.skip(why)
    home = install(WhaleSettings().cache_dir)
    log: Path = tmp_path_factory.mktemp("keycloak") / "keycloak.log"
    server = Keycloak(home, free_port(), log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def settings(keycloak: Keycloak, audience: str = "whale") -> AuthSettings:
    return AuthSettings(oidc_issuer=keycloak.issuer, oidc_audience=audience, oidc_roles=ROLES)


@pytest.fixture(scope="module")
def center(keycloak: Keycloak) -> Iterator[Harness]:
    yield from make_harness(auth=settings(keycloak))


def test_keycloak_tokens_give_people_with_roles_from_their_groups(keycloak: Keycloak) -> None:
    verifier = OidcVerifier(settings(keycloak))
    alice = asyncio.run(verifier.identity(keycloak.password_token("alice", "alice-pw")))
    sam = asyncio.run(verifier.identity(keycloak.password_token("sam", "sam-pw")))
    assert (alice.name, alice.role, alice.via) == ("alice", Role.admin, "oidc")
    assert (sam.name, sam.role) == ("sam", Role.operator)


def test_a_keycloak_token_for_another_audience_or_altered_is_refused(keycloak: Keycloak) -> None:
    token = keycloak.password_token("alice", "alice-pw")
    with pytest.raises(NotAuthenticated, match="audience"):
        asyncio.run(OidcVerifier(settings(keycloak, audience="billing")).identity(token))
    head, body, signature = token.split(".")
    altered = f"{head}.{body}.{signature[:-4]}AAAA"
    with pytest.raises(NotAuthenticated):
        asyncio.run(OidcVerifier(settings(keycloak)).identity(altered))


def test_the_event_center_answers_keycloak_identities_by_role(keycloak: Keycloak, center: Harness) -> None:
    alice = {"Authorization": f"Bearer {keycloak.password_token('alice', 'alice-pw')}"}
    sam = {"Authorization": f"Bearer {keycloak.password_token('sam', 'sam-pw')}"}
    assert center.client.get("/rules", headers=sam).status_code == 200
    assert center.client.post("/todos", json={"title": "disk"}, headers=sam).status_code in (201, 202)
    assert center.client.put("/rules/r1", json={}, headers=sam).status_code == 403
    assert center.client.get("/tokens", headers=sam).status_code == 403
    assert center.client.get("/tokens", headers=alice).status_code == 200
    assert center.client.get("/rules", headers={"Authorization": ""}).status_code == 401
