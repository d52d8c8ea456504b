from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.oidc_issuer import LocalIssuer
from whale.authz import AuthSettings, NotAuthenticated, Role
from whale.oidc import OidcVerifier


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    found = LocalIssuer()
    yield found
    found.close()


def verifier(issuer: LocalIssuer, **overrides: object) -> OidcVerifier:
    settings = AuthSettings(
        oidc_issuer=issuer.url,
        oidc_audience="whale",
        oidc_roles={"sre": "operator", "whale-admins": "admin"},
        oidc_team_claim="team",
        **overrides,  # type: ignore[arg-type]
    )
    return OidcVerifier(settings)


def test_a_valid_jwt_maps_groups_to_the_highest_role(issuer: LocalIssuer) -> None:
    check = verifier(issuer)
    identity = asyncio.run(check.identity(issuer.token(["sre", "whale-admins"], name="bob", team="db")))
    assert (identity.name, identity.role, identity.team, identity.via) == ("bob", Role.admin, "db", "oidc")
    assert asyncio.run(check.identity(issuer.token(["other"]))).role is Role.none


def test_keys_are_discovered_once_and_cached(issuer: LocalIssuer) -> None:
    check = verifier(issuer)
    before = issuer.jwks_fetches
    for _ in range(5):
        asyncio.run(check.identity(issuer.token(["sre"])))
    assert issuer.jwks_fetches - before == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"expires_in": -3600}, "expired"),
        ({"iss": "https://evil.example"}, "issuer"),
    ],
)
def test_wrong_audience_expired_and_foreign_issuer_are_refused(
    issuer: LocalIssuer, claims: dict[str, object], reason: str
) -> None:
    token = issuer.token(["whale-admins"], **claims)  # type: ignore[arg-type]
    with pytest.raises(NotAuthenticated, match=reason):
        asyncio.run(verifier(issuer).identity(token))


def test_clock_skew_within_the_leeway_is_accepted(issuer: LocalIssuer) -> None:
    token = issuer.token(["sre"], expires_in=-10)
    assert asyncio.run(verifier(issuer, oidc_leeway_seconds=60).identity(token)).role is Role.operator
    with pytest.raises(NotAuthenticated, match="expired"):
        asyncio.run(verifier(issuer, oidc_leeway_seconds=0).identity(token))


def test_a_token_signed_by_another_key_is_refused(issuer: LocalIssuer) -> None:
    other = LocalIssuer()
    try:
        forged = other.token(["whale-admins"], iss=issuer.url)
    finally:
        other.close()
    with pytest.raises(NotAuthenticated):
        asyncio.run(verifier(issuer).identity(forged))
