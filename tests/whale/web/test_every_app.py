"""Every Whale HTTP app answers errors with the one body and serves only its own metric families.

The apps: the event center (with its /todos, /rules, /subscriptions, /schemas and search routers),
the adapters, the dispatcher, and the health server of the processes without an HTTP API (dedupe,
indexer, to-do stage, rule engine, executor).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from whale_adapters import metrics as adapters_metrics
from whale_adapters.app import Components, build_app
from whale_adapters.ingest import IngestWriter
from whale_adapters.settings import Settings as AdaptersSettings
from whale_adapters.validation import EventValidator
from whale_dedupe import metrics as dedupe_metrics
from whale_dispatcher import app as dispatcher_app
from whale_dispatcher import metrics as dispatcher_metrics
from whale_dispatcher.settings import Settings as DispatcherSettings
from whale_event_center import metrics as event_center_metrics
from whale_executor import metrics as executor_metrics
from whale_indexer import metrics as indexer_metrics
from whale_rule_engine import metrics as rule_engine_metrics
from whale_todo import metrics as todo_metrics

from tests.adapters.fakes import DictSchemas
from tests.event_center.fakes import Harness, make_harness
from tests.metric_names import declared, exported
from tests.ports import free_port
from whale import inventory_http
from whale import metrics as library_metrics
from whale.health import serve_health
from whale.metrics import Families
from whale.producer import EventProducer
from whale.testing import FakeProducer
from whale.web.health import metrics_payload

KEYS = {"error", "message", "problems", "retryable"}


@dataclass
class App:
    name: str
    get: Callable[[str], httpx.Response]
    bad: Callable[[], httpx.Response]
    families: tuple[Families, ...]


@pytest.fixture(scope="module")
def event_center() -> Iterator[App]:
    harness = cast(Generator[Harness, None, None], make_harness())
    client = next(harness).client
    yield App(
        "event-center",
        client.get,
        lambda: client.get("/todos", params={"limit": 0}),
        (event_center_metrics.FAMILIES,),
    )
    harness.close()


@pytest.fixture(scope="module")
def adapters() -> App:
    parts = Components(IngestWriter(FakeProducer(), EventValidator(DictSchemas({}))))  # type: ignore[arg-type]
    client = TestClient(build_app(AdaptersSettings(alertmanager_token="tok"), parts))
    headers = {"authorization": "Bearer tok"}
    return App(
        "adapters",
        client.get,
        lambda: client.post("/alertmanager", content=b"{", headers=headers),
        (adapters_metrics.FAMILIES,),
    )


@pytest.fixture
async def dispatcher() -> AsyncIterator[App]:
    async with httpx.AsyncClient() as outgoing:
        running = dispatcher_app.Dispatcher(
            DispatcherSettings(), cast(EventProducer, FakeProducer()), outgoing
        )
        client = TestClient(dispatcher_app.build_app(running))
        families = (library_metrics.CONSUMER, dispatcher_metrics.FAMILIES)
        yield App("dispatcher", client.get, lambda: client.post("/status"), families)
        await running.close()


def check_error_body(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert set(body) >= KEYS and isinstance(body["problems"], list) and isinstance(body["retryable"], bool)
    return body


def check_app(app: App, bad_status: int) -> None:
    check_error_body(app.bad(), bad_status)
    assert check_error_body(app.get("/no/such/route"), 404)["error"] == "not_found"
    assert app.get("/healthz").json() == {"status": "ok"}
    assert exported(app.get("/metrics").text) == declared(*app.families)


def test_the_event_center_answers_a_bad_request_and_a_404_with_the_one_body(event_center: App) -> None:
    check_app(event_center, 400)


def test_the_adapters_answer_a_bad_request_and_a_404_with_the_one_body(adapters: App) -> None:
    check_app(adapters, 400)


async def test_the_dispatcher_answers_a_bad_request_and_a_404_with_the_one_body(dispatcher: App) -> None:
    check_app(dispatcher, 405)


async def test_the_health_server_answers_a_bad_request_and_a_404_with_the_one_body() -> None:
    port = free_port()
    server = await serve_health("127.0.0.1", port, registry=executor_metrics.registry())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            check_error_body(await http.post("/readyz"), 405)
            check_error_body(await http.get("/no/such/route"), 404)
            assert exported((await http.get("/metrics")).text) == declared(
                library_metrics.CONSUMER, executor_metrics.FAMILIES, inventory_http.FAMILIES
            )
    finally:
        server.close()
        await server.wait_closed()


PROCESSES = {  # each process's own families (the library's shared groups are checked below)
    "event-center": [event_center_metrics.FAMILIES],
    "dedupe": [dedupe_metrics.FAMILIES],
    "indexer": [indexer_metrics.FAMILIES],
    "todo": [todo_metrics.FAMILIES],
    "rule-engine": [rule_engine_metrics.FAMILIES],
    "executor": [executor_metrics.FAMILIES],
    "adapters": [adapters_metrics.FAMILIES],
    "dispatcher": [dispatcher_metrics.FAMILIES],
}


@pytest.mark.parametrize(("one", "other"), list(combinations(PROCESSES, 2)))
def test_no_two_processes_export_the_same_family(one: str, other: str) -> None:
    assert not declared(*PROCESSES[one]) & declared(*PROCESSES[other])


def test_the_services_registries_hold_their_own_families_only() -> None:
    """Their own, and the shared consume loop's in every process that runs it."""
    consumer = library_metrics.CONSUMER
    assert exported_of(executor_metrics.registry()) == declared(
        consumer, executor_metrics.FAMILIES, inventory_http.FAMILIES
    )
    assert exported_of(rule_engine_metrics.registry()) == declared(rule_engine_metrics.FAMILIES)
    assert exported_of(dedupe_metrics.registry()) == declared(consumer, dedupe_metrics.FAMILIES)
    assert exported_of(indexer_metrics.registry()) == declared(consumer, indexer_metrics.FAMILIES)
    assert exported_of(todo_metrics.registry()) == declared(consumer, todo_metrics.FAMILIES)
    assert exported_of(dispatcher_metrics.registry()) == declared(consumer, dispatcher_metrics.FAMILIES)


def exported_of(registry: Any) -> set[str]:
    return exported(metrics_payload(registry).decode())
