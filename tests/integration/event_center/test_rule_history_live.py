"""Rule history on the real Kafka and Elasticsearch: three saves through a running event center (a
real admin token), the indexer storing their audit events from whale.events, the versions listed,
diffed and rolled back; the rollback is version 4, equal to version 1 and in force on whale.rules."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from whale import topics
from whale.compacted import CompactedView
from whale.settings import WhaleSettings

from .live import AppThread, Pipeline, admin_token

pytestmark = pytest.mark.integration
DEADLINE = 120.0  # the indexer reads whale.events from its start: allow for a long topic


@pytest.fixture(scope="module")
def center(stack: WhaleSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, str]]:
    """An event center and an indexer of the real whale.events (where audit events go) into this
    module's own index prefix."""
    pipeline = Pipeline(stack, tmp_path_factory.mktemp("rulehist"))
    pipeline.indexer_settings = pipeline.indexer_settings.model_copy(update={"topics": [topics.EVENTS]})
    pipeline.start_indexer()
    admin_token(stack)  # on whale.tokens before the event center starts reading it
    try:
        with AppThread(pipeline.settings) as app:
            app.wait_ready()
            with pipeline.client(app.url) as http:
                deadline = time.monotonic() + DEADLINE
                while http.get("/rules").status_code != 200:  # the token reached the center's view
                    assert time.monotonic() < deadline, "the admin token is not accepted"
                    time.sleep(0.2)
            yield pipeline, app.url
    finally:
        if pipeline.indexer is not None:
            pipeline.indexer.stop()
        httpx.delete(f"{stack.es_url}/{pipeline.settings.index_prefix}-*", timeout=30)
        httpx.delete(f"{stack.es_url}/_index_template/{pipeline.settings.index_prefix}", timeout=30)


def versions_when(http: httpx.Client, rule_id: str, numbers: list[int]) -> list[dict[str, Any]]:
    """The rule's versions once every one of ``numbers`` is listed with its audit record (an actor)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        response = http.get(f"/rules/{rule_id}/versions")
        listed = response.json().get("versions", []) if response.status_code == 200 else []
        if [v["version"] for v in listed if v.get("actor")] == numbers:
            return listed
        assert time.monotonic() < deadline, (
            f"not indexed in time: {response.status_code} {response.text[:500]}"
        )
        time.sleep(0.5)


def in_force(stack: WhaleSettings, rule_id: str, version: int) -> dict[str, Any]:
    """The rule's record on whale.rules as a fresh reader of the compacted topic sees it."""

    async def read() -> dict[str, Any]:
        view = CompactedView(stack, topics.RULES)
        await view.start()
        try:
            seen = await asyncio.to_thread(
                view.wait_for,
                lambda items: rule_id in items and items[rule_id].data["version"] == version,
                60,
            )
            assert seen, "the rollback is not on whale.rules"
            record = view.get(rule_id)
            assert record is not None and isinstance(record.data, dict)
            return record.data
        finally:
            await view.stop()

    return asyncio.run(read())


def test_three_saves_listed_diffed_and_rolled_back_to_the_first(
    stack: WhaleSettings, center: tuple[Pipeline, str], tmp_path: Path
) -> None:
    pipeline, url = center
    rule_id = f"hist-{uuid.uuid4().hex[:8]}"
    doc: dict[str, Any] = {
        "match": {"field": "type", "equals": f"test.hist.{rule_id}"},
        "target": {"kind": "action", "name": "noop", "pool": f"nopool-{rule_id[-8:]}"},
        "params": {"x": "{{ data.x }}"},
    }
    with pipeline.client(url) as http:
        try:
            assert http.put(f"/rules/{rule_id}", json=doc).status_code == 201
            assert http.put(f"/rules/{rule_id}", json={**doc, "description": "two"}).status_code == 200
            third = {**doc, "description": "three", "params": {"x": "{{ data.y }}"}}
            assert http.put(f"/rules/{rule_id}", json=third).status_code == 200

            listed = versions_when(http, rule_id, [3, 2, 1])
            assert listed[0]["actor"]["name"] == "integration-admin"
            assert listed[0]["rule"]["description"] == "three"

            diff = http.get(f"/rules/{rule_id}/diff", params={"from": 1, "to": 3}).json()
            changed = {c["path"]: (c.get("old"), c.get("new")) for c in diff["changes"]}
            assert changed == {"/description": ("", "three"), "/params/x": ("{{ data.x }}", "{{ data.y }}")}

            back = http.post(f"/rules/{rule_id}/rollback", json={"version": 1})
            assert back.status_code == 200, back.text
            assert back.json()["rule"]["version"] == 4

            first = http.get(f"/rules/{rule_id}/versions/1").json()["rule"]
            record = in_force(stack, rule_id, 4)
            assert {**record, "version": 1} == first

            after = versions_when(http, rule_id, [4, 3, 2, 1])
            assert after[0]["action"] == "rolled_back" and after[0]["rolled_back_from"] == 1
            same = http.get(f"/rules/{rule_id}/diff", params={"from": 1, "to": 4}).json()
            assert same["changes"] == []
        finally:
            http.delete(f"/rules/{rule_id}")
