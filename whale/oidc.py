"""OIDC bearer JWTs: signature against the issuer's JWKS (fetched and cached), issuer, audience,
expiry and not-before (with clock-skew leeway); the group claim maps to a :class:`~whale.authz.Role`.

The JWKS URL is ``WHALE_AUTH_OIDC_JWKS_URL`` or the ``jwks_uri`` of the issuer's discovery document
(``<issuer>/.well-known/openid-configuration``). Keys are cached for ``oidc_jwks_cache_seconds``; a
token signed with an unknown ``kid`` makes one refetch (key rotation), never one per request.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import jwt
import structlog

from whale.authz import AuthSettings, Identity, NotAuthenticated, Role

log = structlog.get_logger(__name__)


class OidcVerifier:
    """Checks OIDC JWTs for one issuer and audience (:class:`~whale.authz.JwtVerifier`)."""

    def __init__(self, settings: AuthSettings) -> None:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise ValueError("OIDC needs WHALE_AUTH_OIDC_ISSUER and WHALE_AUTH_OIDC_AUDIENCE")
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.roles = {group: Role.parse(role) for group, role in settings.oidc_roles.items()}
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self.settings.oidc_jwks_url or self._discover()
                self._client = jwt.PyJWKClient(
                    url, cache_keys=True, lifespan=self.settings.oidc_jwks_cache_seconds, timeout=10
                )
            return self._client

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            doc = httpx.get(url, timeout=10).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NotAuthenticated(f"cannot read the OIDC discovery document {url}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("jwks_uri"), str):
            raise NotAuthenticated(f"the OIDC discovery document {url} has no jwks_uri")
        return str(doc["jwks_uri"])

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token`` (blocking: fetches keys when needed)."""
        try:
            key = self._jwks().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=self.settings.oidc_algorithms,
                audience=self.settings.oidc_audience,
                issuer=self.issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the OIDC token has expired") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated(
                f"the OIDC token is not for this audience (expected {self.settings.oidc_audience!r})"
            ) from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated(f"the OIDC token is not from the issuer {self.issuer!r}") from None
        except jwt.PyJWKClientError as exc:
            raise NotAuthenticated(f"the OIDC token's signing key is not available: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticated(f"invalid OIDC token: {exc}") from None
        return claims

    def identity_of(self, claims: dict[str, Any]) -> Identity:
        groups = claims.get(self.settings.oidc_group_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        role = max((self.roles.get(str(g), Role.none) for g in groups), default=Role.none)
        name = claims.get(self.settings.oidc_name_claim) or claims.get("email") or claims.get("sub")
        team_claim = self.settings.oidc_team_claim
        team = claims.get(team_claim) if team_claim else None
        return Identity(
            name=str(name), kind="person", role=role, team=str(team) if team else None, via="oidc"
        )

    async def identity(self, token: str) -> Identity:
        claims = await asyncio.to_thread(self.claims, token)
        return self.identity_of(claims)


def verifier(settings: AuthSettings) -> OidcVerifier | None:
    """The verifier when OIDC is configured, else None (personal tokens only)."""
    if settings.oidc_issuer is None:
        return None
    return OidcVerifier(settings)
