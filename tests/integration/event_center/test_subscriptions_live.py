"""The /subscriptions API of real event-center apps on the real Kafka: every change is a record on
the compacted whale.subscriptions topic, so another instance and a fresh view of the topic see it.

The subscriptions written here filter on a type nobody publishes, so a dispatcher that happens to
follow whale.subscriptions never delivers anything for them; each test deletes what it wrote.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from whale_event_center.settings import Settings

from tests.ports import free_port
from whale import topics
from whale.compacted import CompactedView
from whale.settings import WhaleSettings
from whale.subscriptions import RECORD_TYPE, Subscription, from_record

from .live import AppThread, TestAuth, admin_token

pytestmark = pytest.mark.integration


def _auth(app: AppThread) -> TestAuth:
    return TestAuth(admin_token(app.settings.whale))


def _center(stack: WhaleSettings) -> Iterator[AppThread]:
    settings = Settings(whale=stack, port=free_port(), schemas_dir=None, tokens_file=None)
    with AppThread(settings) as app:
        app.wait_ready()
        yield app


@pytest.fixture(scope="module")
def first(stack: WhaleSettings) -> Iterator[AppThread]:
    """One event-center app (uvicorn on a free port) with its own views of the compacted topics."""
    yield from _center(stack)


@pytest.fixture(scope="module")
def second(stack: WhaleSettings) -> Iterator[AppThread]:
    """Another app instance: it shares nothing with ``first`` but the Kafka topics."""
    yield from _center(stack)


@pytest.fixture
def name(first: AppThread) -> Iterator[str]:
    """A fresh subscription name; whatever the test left under it is deleted (a tombstone) afterwards."""
    name = f"test-ec-sub-{uuid.uuid4().hex[:10]}"
    yield name
    httpx.delete(f"{first.url}/subscriptions/{name}", timeout=30, auth=_auth(first))


def _doc(name: str) -> dict[str, Any]:
    return {
        "endpoint": "http://127.0.0.1:9/hooks/whale-test",
        "filter": {"all": [{"field": "type", "equals": f"test.ec.subscriptions.{name}"}]},
        "max_attempts": 2,
    }


def _eventually(
    get: Callable[[], httpx.Response], ok: Callable[[httpx.Response], bool], timeout: float = 30
) -> httpx.Response:
    """Poll ``get`` until ``ok`` holds for its answer (or the timeout passed); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = get()
        if ok(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


async def test_put_is_read_back_and_lands_on_the_compacted_topic(
    first: AppThread, second: AppThread, name: str, stack: WhaleSettings
) -> None:
    """PUT answers 201 then 200 on replace; GET and the list answer the saved state; the other running
    instance serves it too, and a view of whale.subscriptions started afterwards holds it as the
    shared ``whale.subscription.saved`` record."""
    async with httpx.AsyncClient(base_url=first.url, timeout=30, auth=_auth(first)) as http:
        created = await http.put(f"/subscriptions/{name}", json=_doc(name))
        assert created.status_code == 201, created.text
        assert created.json()["id"] == name and created.json()["paused"] is False
        replaced = await http.put(f"/subscriptions/{name}", json={**_doc(name), "max_attempts": 4})
        assert replaced.status_code == 200, replaced.text
        got = await http.get(f"/subscriptions/{name}")
        assert got.status_code == 200 and got.json() == replaced.json()
        assert got.json()["max_attempts"] == 4
        listed = (await http.get("/subscriptions")).json()["subscriptions"]
        assert [s for s in listed if s["id"] == name] == [replaced.json()]

    other = _eventually(
        lambda: httpx.get(f"{second.url}/subscriptions/{name}", timeout=30, auth=_auth(second)),
        lambda r: r.status_code == 200 and r.json()["max_attempts"] == 4,
    )
    assert other.status_code == 200 and other.json() == replaced.json()

    view = CompactedView(stack, topics.SUBSCRIPTIONS)
    await view.start()
    try:
        record = view.get(name)
        assert record is not None and record.type == RECORD_TYPE
        assert from_record(record) == Subscription.model_validate(replaced.json())
    finally:
        await view.stop()


def test_pause_resume_and_delete_reach_another_running_instance(
    first: AppThread, second: AppThread, name: str
) -> None:
    """pause on one instance and resume on the other flip ``paused`` (everything else kept) and each
    instance sees the other's change; DELETE answers 204, then 404 naming the subscription on both."""
    with (
        httpx.Client(base_url=first.url, timeout=30, auth=_auth(first)) as a,
        httpx.Client(base_url=second.url, timeout=30, auth=_auth(second)) as b,
    ):
        saved = a.put(f"/subscriptions/{name}", json=_doc(name))
        assert saved.status_code == 201, saved.text

        paused = a.post(f"/subscriptions/{name}/pause")
        assert paused.status_code == 200 and paused.json() == {**saved.json(), "paused": True}
        seen = _eventually(
            lambda: b.get(f"/subscriptions/{name}"), lambda r: r.status_code == 200 and r.json()["paused"]
        )
        assert seen.json() == paused.json()

        resumed = b.post(f"/subscriptions/{name}/resume")
        assert resumed.status_code == 200 and resumed.json() == saved.json()
        seen = _eventually(lambda: a.get(f"/subscriptions/{name}"), lambda r: r.json()["paused"] is False)
        assert seen.json() == saved.json()

        assert a.delete(f"/subscriptions/{name}").status_code == 204
        missing = a.get(f"/subscriptions/{name}")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": "not_found",
            "message": f"no subscription {name!r}",
            "problems": [{"field": "name", "message": f"no subscription {name!r}"}],
            "retryable": False,
        }
        gone = _eventually(lambda: b.get(f"/subscriptions/{name}"), lambda r: r.status_code == 404)
        assert gone.status_code == 404
        assert name not in [s["id"] for s in b.get("/subscriptions").json()["subscriptions"]]
        assert b.post(f"/subscriptions/{name}/pause").status_code == 404
