"""Working a to-do on the real Kafka: the to-do stage (in this process, its own consumer group and
CloudEvents source) gives a to-do of a type with a 1-second SLA a due time; it goes overdue and
``whale.todo.overdue`` appears on ``whale.events`` (where rules match) once; it is assigned, resolved and reopened
through the event center's API, and the reopened item (its clock restarted) is escalated again,
now naming its assignee."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from whale_todo.app import serve
from whale_todo.settings import Settings as TodoSettings

from tests.integration.event_center.live import AppThread, Pipeline
from whale import topics
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.store import StoreSettings
from whale.testing import Tap
from whale.todos import CREATED, OVERDUE

pytestmark = pytest.mark.integration
WAIT = 60.0


class StageThread:
    """``whale run todo`` (its ``serve``) in a thread with its own event loop."""

    def __init__(self, settings: TodoSettings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        async def body() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await serve(self._settings, self._stop)

        try:
            asyncio.run(body())
        except BaseException as exc:  # reported by the test
            self.error = exc

    def __enter__(self) -> StageThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


@pytest.fixture
def pipeline(stack: WhaleSettings, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The event center's isolated test settings (its own ingest topic and index prefix); the
    ``/todos`` API this test uses writes to the shared bus and reads ``whale.todos``."""
    return Pipeline(stack, tmp_path_factory.mktemp("ec"))


@pytest.fixture
def center(pipeline: Pipeline) -> Iterator[AppThread]:
    with AppThread(pipeline.settings) as app:
        app.wait_ready()
        yield app


@pytest.fixture
def stage(stack: WhaleSettings, tmp_path: Path) -> Iterator[TodoSettings]:
    uid = uuid.uuid4().hex[:10]
    settings = TodoSettings(
        whale=stack,
        group=f"test-todo-work-{uid}",
        source=f"whale/todo/test-{uid}",
        sla={f"it.todo.work.{uid}.*": 1},
        sla_default=0,  # nobody else's item (this stage sees the shared bus) gets a due time
        ignore_type_prefixes=[""],  # and no other session's unhandled event becomes one of its items
        overdue_check_seconds=0.3,
        state=StoreSettings(dir=tmp_path),
    )
    with StageThread(settings) as running:
        yield settings
    assert running.error is None, running.error


def test_an_item_with_a_one_second_sla_is_escalated_once_then_assigned_and_reopened_through_the_api(
    pipeline: Pipeline, center: AppThread, stage: TodoSettings
) -> None:
    results = Tap(pipeline.stack, topics.RESULTS)
    events = Tap(pipeline.stack, topics.EVENTS)
    kind = next(iter(stage.sla)).replace("*", "check")

    def ours(type_: str, todo_id: str | None = None) -> Callable[[CloudEvent], bool]:
        return lambda e: (
            e.type == type_ and e.source == stage.source and (todo_id is None or e.subject == todo_id)
        )

    try:
        with pipeline.client(center.url) as api:
            created: list[CloudEvent] = []
            deadline = time.monotonic() + WAIT
            while not created and time.monotonic() < deadline:  # until our stage has its partitions
                key = f"{kind}|{uuid.uuid4().hex}"  # a fresh item each time (other stages share the bus)
                answer = api.post("/todos", json={"title": "check the backups", "key": key, "type": kind})
                assert answer.status_code in (201, 202), answer.text
                created = results.wait(ours(CREATED), timeout=5)
            assert created, "our to-do stage did not open the item"
            todo_id = str(created[0].subject)
            assert created[0].data["todo"]["sla_seconds"] == 1
            assert created[0].data["todo"]["due_at"] is not None

            (overdue,) = events.wait(ours(OVERDUE, todo_id), timeout=WAIT)
            assert overdue.data["todo_id"] == todo_id
            assert overdue.data["title"] == "check the backups"
            assert (overdue.data["assignee"], overdue.data["priority"]) == (None, "p3")
            assert overdue.data["late_seconds"] >= 0
            events.poll(3)  # ten sweeps later: still once for that due time
            assert len([e for e in events.events if ours(OVERDUE, todo_id)(e)]) == 1

            unknown = api.patch(f"/todos/{todo_id}", json={"assignee": f"nobody-{uuid.uuid4().hex}"})
            assert unknown.status_code == 400
            assert unknown.json()["problems"][0]["field"] == "body.assignee"
            assigned = api.patch(
                f"/todos/{todo_id}", json={"assignee": "integration-admin", "priority": "p1"}
            )
            assert assigned.status_code == 200, assigned.text
            item = assigned.json()
            assert (item["assignee"], item["status"], item["priority"]) == (
                "integration-admin",
                "claimed",
                "p1",
            )
            assert item["overdue_for"] == item["due_at"]

            resolved = api.post(f"/todos/{todo_id}/resolve", json={"by": "x", "comment": "done"})
            assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
            reopened = api.post(f"/todos/{todo_id}/reopen", json={"comment": "the backups failed again"})
            assert reopened.status_code == 200, reopened.text
            item = reopened.json()
            assert (item["status"], item["reopened"], item["overdue_for"]) == ("claimed", 1, None)
            assert item["history"][-1]["text"] == "reopened by integration-admin: the backups failed again"

            again = events.wait(ours(OVERDUE, todo_id), count=2, timeout=WAIT)
            assert len(again) == 2, "the reopened item's new due time is escalated too"
            assert (again[1].data["assignee"], again[1].data["priority"]) == ("integration-admin", "p1")
            listed = api.get("/todos", params={"assignee": "integration-admin", "overdue": "true"}).json()
            assert todo_id in {t["id"] for t in listed["todos"]}
            api.post(f"/todos/{todo_id}/resolve", json={"by": "x"})
    finally:
        results.close()
        events.close()
