"""Fixtures of the event center's integration tests (helpers in live)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from whale.settings import WhaleSettings
from whale.testing import Tap

from .live import AppThread, Pipeline


@pytest.fixture(scope="module")
def pipeline(stack: WhaleSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    p = Pipeline(stack, tmp_path_factory.mktemp("ec"))
    p.start_dedupe()
    p.start_indexer()
    yield p
    p.stop_dedupe()
    if p.indexer is not None:
        p.indexer.stop()
    httpx.delete(f"{stack.es_url}/{p.settings.index_prefix}-*", timeout=30)
    httpx.delete(f"{stack.es_url}/_index_template/{p.settings.index_prefix}", timeout=30)


@pytest.fixture(scope="module")
def center(pipeline: Pipeline) -> Iterator[AppThread]:
    with AppThread(pipeline.settings) as app:
        app.wait_ready()
        yield app


@pytest.fixture(scope="module")
def http(pipeline: Pipeline, center: AppThread) -> Iterator[httpx.Client]:
    with pipeline.client(center.url) as client:
        response = client.put(
            f"/schemas/{pipeline.type}",
            json={
                "type": "object",
                "required": ["host", "value"],
                "properties": {
                    "host": {"type": "string"},
                    "value": {"type": "number"},
                    "note": {"type": "string"},
                },
            },
        )
        assert response.status_code == 200, response.text
        yield client


@pytest.fixture
def events_tap(pipeline: Pipeline) -> Iterator[Tap]:
    tap = Tap(pipeline.stack, pipeline.events_topic, from_start=True)
    yield tap
    tap.close()
