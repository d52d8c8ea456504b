"""Route handlers are module-level functions (FastAPI dependencies give them their app's state),
never functions nested inside an app or router factory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from whale_adapters import app as adapters_app
from whale_console.views import auth, browse, events, overview, rules, todos, traces
from whale_dispatcher import app as dispatcher_app
from whale_event_center import (
    api_schemas,
    api_search,
    approvals_api,
    dlq_api,
    replay_api,
    rules_api,
    runs_api,
    subscriptions_api,
    todo_api,
    tokens_api,
    whoami_api,
)
from whale_event_center import app as event_center_app

from whale.web import health

ROOT = Path(__file__).resolve().parents[3]
NESTED = re.compile(r"^[ \t]+@\w+\.(get|post|put|delete|patch|api_route|websocket)\(", re.M)
ROUTERS = {
    "event center /events": event_center_app.router,
    "/schemas": api_schemas.router,
    "search and trace": api_search.router,
    "/rules": rules_api.router,
    "/subscriptions": subscriptions_api.router,
    "/todos": todo_api.router,
    "/tokens": tokens_api.router,
    "/whoami": whoami_api.router,
    "/approvals": approvals_api.router,
    "/runs": runs_api.router,
    "/dlq": dlq_api.router,
    "/replays": replay_api.router,
    "adapters": adapters_app.router,
    "dispatcher": dispatcher_app.router,
    "health": health.router,
    **{
        f"console {view.__name__.rsplit('.', 1)[-1]}": view.router
        for view in (auth, browse, events, overview, rules, todos, traces)
    },
}


def test_no_source_file_decorates_a_route_inside_a_function() -> None:
    sources = [*ROOT.joinpath("whale").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]
    nested = [str(path.relative_to(ROOT)) for path in sources if NESTED.search(path.read_text())]
    assert nested == []


@pytest.mark.parametrize("router", list(ROUTERS.values()), ids=list(ROUTERS))
def test_every_route_of_a_module_router_is_a_module_level_function(router: APIRouter) -> None:
    endpoints = [r.endpoint.__qualname__ for r in router.routes if isinstance(r, APIRoute)]
    assert endpoints
    assert [name for name in endpoints if "<locals>" in name or "." in name] == []
