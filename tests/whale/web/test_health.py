"""``/healthz``, ``/readyz`` and ``/metrics``: one set of routes, for FastAPI apps and for processes
without an HTTP API (``whale.health.serve_health``)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.ports import free_port
from whale.health import serve_health
from whale.metrics import Families, process_registry
from whale.web.health import Check, Readiness, install_health

OWN = Families("own")
OWN_TOTAL = OWN.counter("whale_own_things_total", "things")


def test_readyz_names_every_check_and_what_is_still_waited_for() -> None:
    async def es() -> bool:
        return False

    def broken() -> bool:
        raise RuntimeError("boom")

    app = FastAPI()
    checks: dict[str, Check] = {
        "kafka": lambda: True,
        "elasticsearch": es,
        "views": lambda: ["view a"],
        "broken": broken,
    }
    install_health(app, process_registry(OWN), checks)
    client = TestClient(app)
    assert client.get("/healthz").json() == {"status": "ok"}
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not ready",
        "checks": {"kafka": True, "elasticsearch": False, "views": False, "broken": False},
        "waiting": ["elasticsearch", "view a", "broken"],
    }
    assert "whale_own_things_total" in client.get("/metrics").text


async def test_ready_when_every_check_passes() -> None:
    assert await Readiness({"a": lambda: True, "b": lambda: []}).answer() == (
        200,
        {"status": "ready", "checks": {"a": True, "b": True}},
    )


async def test_a_process_without_an_http_api_serves_the_same_routes_and_a_busy_port_raises() -> None:
    port = free_port()
    ready = False
    server = await serve_health("127.0.0.1", port, {"work": lambda: ready}, registry=process_registry(OWN))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/readyz")).status_code == 503
            ready = True
            assert (await http.get("/readyz")).status_code == 200
            assert "whale_own_things_total" in (await http.get("/metrics")).text
            missing = await http.get("/nope")
            assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        with pytest.raises(OSError):
            await serve_health("127.0.0.1", port, registry=process_registry(OWN))
    finally:
        server.close()
        await server.wait_closed()
