"""``GET /whoami``: the caller's own identity (name, kind, role, team, how it signed in).

The console signs people in with their own credential and asks this route who they are, so it can
show their name and hide the actions their role may not take (the API still checks every call).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from whale.authz import Identity, Role, require


def build_router() -> APIRouter:
    router = APIRouter(tags=["identity"])

    @router.get("/whoami", summary="The caller's identity and role")
    async def whoami(identity: Annotated[Identity, require(Role.viewer)]) -> dict[str, Any]:
        return identity.actor()

    return router
