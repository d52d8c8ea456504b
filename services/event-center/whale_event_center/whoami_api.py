"""``GET /whoami``: the caller's own identity (name, kind, role, team, how it signed in).

The console signs people in with their own credential and asks this route who they are, so it can
show their name and hide the actions their role may not take (the API still checks every call).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI

from whale.authz import Identity, Role, require

router = APIRouter(tags=["identity"])


@router.get("/whoami", summary="The caller's identity and role")
async def whoami(identity: Annotated[Identity, require(Role.viewer)]) -> dict[str, Any]:
    return identity.actor()


def install(app: FastAPI) -> None:
    """The ``/whoami`` route on ``app`` (it needs nothing but the caller's identity)."""
    app.include_router(router)
