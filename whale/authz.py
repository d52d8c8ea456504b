"""Who may do what: identities, roles and the ``require(role)`` dependency every HTTP route uses.

Roles are ordered: ``viewer`` (read events, traces, to-dos, rules, runs, approvals, dead letters) <
``operator`` (claim and resolve to-dos, answer approvals, cancel/pause/resume/retry runs, redrive dead
letters, replay events) < ``author`` (rules, schemas, subscriptions) < ``admin`` (tokens, forced
schema changes, internal topics). A person or service proves who it is with

- a personal API token ``wht_<id>.<secret>`` (only its sha256 is stored, on the compacted topic
  ``whale.tokens``, so a revocation reaches every replica; see :mod:`whale.tokens`), or
- an OIDC bearer JWT from the configured issuer (:mod:`whale.oidc`; group claims map to roles).

With dev mode off (the default) a route answers 401 without a valid identity and 403 without the
role; dev mode (``WHALE_DEV_MODE=true``) makes every caller the admin ``dev-mode`` and is logged
loudly at start. Health probes are the only routes that use no ``require``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Literal, Protocol

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale import topics
from whale.errors import WhaleError

log = structlog.get_logger("whale.authz")
TOKEN_PREFIX = "wht_"  # noqa: S105 - the prefix of personal tokens, not a secret


class Role(IntEnum):
    """Ordered roles: each includes every right of the ones below it (``none`` has no right)."""

    none = 0
    viewer = 1
    operator = 2
    author = 3
    admin = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}: one of viewer, operator, author, admin") from None


Kind = Literal["person", "service"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: its name, kind, highest role, optional team and how it signed in."""

    name: str
    kind: Kind
    role: Role
    team: str | None = None
    via: Literal["token", "oidc", "dev", "kafka"] = "token"

    def actor(self) -> dict[str, Any]:
        """What audit events and approvals record about the caller."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "role": self.role.name, "via": self.via}
        if self.team:
            out["team"] = self.team
        return out


DEV_IDENTITY = Identity(name="dev-mode", kind="person", role=Role.admin, via="dev")


class AuthError(WhaleError, status=401, code="unauthenticated"):
    """A refused request: ``status`` 401 (who are you?) or 403 (not allowed); ``field`` says which
    credential (``authorization`` unless told otherwise)."""

    def __init__(self, message: str, *, field: str | None = "authorization") -> None:
        super().__init__(message, field=field)


class NotAuthenticated(AuthError, status=401, code="unauthenticated"):
    """No, malformed, unknown, expired or revoked credentials (401)."""


class NotPermitted(AuthError, status=403, code="forbidden"):
    """The identity lacks the role (or the team) the request needs (403)."""


class AuthSettings(BaseSettings):
    """How people authenticate (env prefix ``WHALE_AUTH_``; dev mode is ``WHALE_DEV_MODE``)."""

    model_config = SettingsConfigDict(env_prefix="WHALE_AUTH_", extra="ignore", populate_by_name=True)

    dev_mode: bool = Field(
        default=False,
        validation_alias=AliasChoices("WHALE_DEV_MODE", "WHALE_EVENT_CENTER_DEV_MODE", "WHALE_AUTH_DEV_MODE"),
        description="no authentication at all: every caller is admin (never in production)",
    )
    oidc_issuer: str | None = Field(default=None, description="OIDC issuer URL (exact 'iss' claim)")
    oidc_audience: str | None = Field(default=None, description="required 'aud' claim (the client id)")
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL (default: jwks_uri of the issuer's discovery document)"
    )
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    oidc_leeway_seconds: int = Field(
        default=60, ge=0, le=600, description="clock skew allowed on exp/nbf/iat"
    )
    oidc_jwks_cache_seconds: int = Field(default=300, gt=0, description="how long fetched keys are reused")
    oidc_name_claim: str = "preferred_username"
    oidc_group_claim: str = Field(default="groups", description="claim holding the caller's groups")
    oidc_team_claim: str | None = Field(default=None, description="claim naming the caller's team")
    oidc_roles: dict[str, str] = Field(
        default_factory=dict,
        description='group -> role, e.g. {"whale-admins": "admin", "sre": "operator"} (highest wins)',
    )


class TokenBook(Protocol):
    """Where personal tokens are looked up by id (the ``whale.tokens`` view)."""

    def record(self, token_id: str) -> Mapping[str, Any] | None: ...


class JwtVerifier(Protocol):
    async def identity(self, token: str) -> Identity: ...


def split_token(token: str) -> tuple[str, str] | None:
    """``wht_<id>.<secret>`` -> (id, token) or None when it is not a personal token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, dot, secret = token[len(TOKEN_PREFIX) :].partition(".")
    return (token_id, token) if dot and token_id and secret else None


def identity_of_record(record: Mapping[str, Any], token: str, now: datetime | None = None) -> Identity:
    """Check ``token`` against its stored record (hash, revocation, expiry) and give its identity."""
    from whale.tokens import hash_token

    if not hmac.compare_digest(str(record.get("sha256", "")), hash_token(token)):
        raise NotAuthenticated("unknown token")
    if record.get("revoked"):
        raise NotAuthenticated(f"token {record.get('id')!r} was revoked")
    expires = record.get("expires")
    if expires is not None:
        when = datetime.fromisoformat(str(expires))
        if (now or datetime.now(UTC)) >= when:
            raise NotAuthenticated(f"token {record.get('id')!r} expired at {when.isoformat()}")
    kind: Kind = "service" if record.get("kind") == "service" else "person"
    return Identity(
        name=str(record.get("name")),
        kind=kind,
        role=Role.parse(str(record.get("role", "viewer"))),
        team=record.get("team") or None,
        via="token",
    )


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity` (or a 401 saying why not)."""

    def __init__(
        self, *, dev_mode: bool = False, tokens: TokenBook | None = None, oidc: JwtVerifier | None = None
    ) -> None:
        self.dev_mode = dev_mode
        self.tokens = tokens
        self.oidc = oidc

    async def authenticate(self, authorization: str | None) -> Identity:
        if self.dev_mode:
            return DEV_IDENTITY
        if not authorization:
            raise NotAuthenticated("missing credentials: send 'Authorization: Bearer <token or OIDC JWT>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("malformed Authorization header: expected 'Bearer <token>'")
        personal = split_token(token)
        if personal is not None:
            record = self.tokens.record(personal[0]) if self.tokens is not None else None
            if record is None:
                raise NotAuthenticated("unknown token")
            return identity_of_record(record, token)
        if token.count(".") == 2 and self.oidc is not None:
            return await self.oidc.identity(token)
        raise NotAuthenticated(
            "unknown credentials: expected a personal token (wht_...)"
            + (" or an OIDC JWT" if self.oidc is not None else " (OIDC is not configured)")
        )


def require(role: Role) -> Any:
    """A FastAPI dependency: the caller's :class:`Identity` if it holds ``role`` (401/403 otherwise).

    Use it as ``dependencies=[require(Role.viewer)]`` on a route, or as a parameter
    ``identity: Annotated[Identity, require(Role.author)]`` when the handler needs the caller.
    """

    async def check(request: Request) -> Identity:
        auth: Authenticator | None = getattr(request.app.state, "authenticator", None)
        if auth is None:
            raise NotAuthenticated("this service has no authentication configured: every request is refused")
        identity = await auth.authenticate(request.headers.get("authorization"))
        if identity.role < role:
            raise NotPermitted(
                f"{identity.kind} {identity.name!r} has role {identity.role.name}; this needs {role.name}",
                field=None,
            )
        request.state.identity = identity
        return identity

    check.__name__ = f"require_{role.name}"
    check.whale_role = role  # type: ignore[attr-defined]  # read by the authorization matrix test
    return Depends(check)


def required_role(dependency: Callable[..., Awaitable[Identity]] | Any) -> Role | None:
    """The role a ``require`` dependency checks (None for any other callable)."""
    role = getattr(dependency, "whale_role", None)
    return role if isinstance(role, Role) else None


def install(app: FastAPI, authenticator: Authenticator, *, service: str) -> None:
    """Attach ``authenticator`` to ``app`` and answer :class:`AuthError` as JSON 401/403."""
    app.state.authenticator = authenticator
    if authenticator.dev_mode:
        log.warning(
            "DEV_MODE",
            service=service,
            message="WHALE_DEV_MODE=true: AUTHENTICATION IS OFF, every caller is admin; never expose this",
        )

    @app.exception_handler(AuthError)
    async def on_auth_error(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="whale"'} if exc.status == 401 else {}
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


# Topics a subscription may read, by the role needed (any other topic is internal: admin only).
READABLE_TOPICS: dict[str, Role] = {
    topics.EVENTS: Role.viewer,
    topics.RESULTS: Role.viewer,
    topics.DLQ: Role.viewer,
    topics.TODOS: Role.viewer,
}


def topic_role(topic: str) -> Role:
    """The role needed to read ``topic`` (pool action topics ``whale.actions[.<pool>]`` too)."""
    if topic in READABLE_TOPICS:
        return READABLE_TOPICS[topic]
    if topic == topics.ACTIONS or topic.startswith(topics.ACTIONS + "."):
        return Role.viewer
    return Role.admin


def _roles_in(dependant: Any) -> list[Role]:
    found = []
    for sub in dependant.dependencies:
        role = required_role(sub.call)
        if role is not None:
            found.append(role)
        found.extend(_roles_in(sub))
    return found


def http_routes(app: FastAPI) -> Iterator[tuple[Any, str, set[str]]]:
    """(original route, effective path, methods) of every HTTP route, included routers flattened."""
    try:  # FastAPI >= 0.130 includes routers lazily: app.routes holds _IncludedRouter entries
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: app.routes is already flat
        for route in app.routes:
            yield route, str(getattr(route, "path", "")), set(getattr(route, "methods", None) or ())
        return
    for context in iter_route_contexts(app.routes):
        yield context.original_route, str(context.path or ""), set(context.methods or ())


def route_roles(app: FastAPI) -> dict[tuple[str, str], Role | None]:
    """(method, path) -> the role each HTTP route requires (None: the route checks no role)."""
    from fastapi.routing import APIRoute

    out: dict[tuple[str, str], Role | None] = {}
    for route, path, methods in http_routes(app):
        if isinstance(route, APIRoute):
            roles = _roles_in(route.dependant)
            for method in methods:
                out[(method, path)] = max(roles) if roles else None
    return out


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid identity (missing, unknown, expired or revoked token, bad JWT)"},
    403: {"description": "the identity lacks the role this needs"},
}


def document(app: FastAPI) -> None:
    """Add the 401/403 answers to the OpenAPI description of every route that requires a role."""
    from fastapi.routing import APIRoute

    for route, _, _ in http_routes(app):
        if isinstance(route, APIRoute) and _roles_in(route.dependant):
            for status, answer in AUTH_RESPONSES.items():
                route.responses.setdefault(status, answer)
