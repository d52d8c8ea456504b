"""The /rules router on the real Kafka: a save is a versioned record on whale.rules that any other
process' view sees; a delete is a tombstone."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from whale_event_center import rules_api

from whale import authz, topics
from whale.compacted import CompactedView
from whale.es.store import Store
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.web.errors import install_error_handlers

pytestmark = pytest.mark.integration


async def test_put_get_delete_through_the_compacted_topic(stack: WhaleSettings) -> None:
    """PUT twice -> versions 1 and 2 on whale.rules; another view sees them; DELETE -> tombstone."""
    producer = EventProducer(stack)
    views = [CompactedView(stack, t) for t in (topics.RULES, topics.CATALOG, topics.SCHEMAS)]
    other = CompactedView(stack, topics.RULES)
    for view in (*views, other):
        await view.start()
    app = FastAPI()
    install_error_handlers(app)

    authz.install(app, authz.Authenticator(dev_mode=True), service="test")
    store = Store(stack.es_url, "whale-events")
    rules_api.install(app, producer, *views, store=store)
    rule_id = f"api-test-{uuid.uuid4().hex[:8]}"
    doc: dict[str, Any] = {
        "match": {"field": "type", "equals": f"test.api.{rule_id}"},
        "target": {"kind": "action", "name": "noop", "pool": f"nopool-{rule_id[-8:]}"},
        "params": {"x": "{{ data.x }}"},
    }
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert (await http.put(f"/rules/{rule_id}", json=doc)).status_code == 201
            second = await http.put(f"/rules/{rule_id}", json={**doc, "description": "v2"})
            assert second.json()["rule"]["version"] == 2
            seen = await asyncio.to_thread(
                other.wait_for, lambda items: rule_id in items and items[rule_id].data["version"] == 2, 30
            )
            assert seen and other.get(rule_id).data["description"] == "v2"  # type: ignore[union-attr]
            assert (await http.get(f"/rules/{rule_id}")).json()["version"] == 2
            bad = await http.put(f"/rules/{rule_id}", json={**doc, "params": {"x": "{{ oops"}})
            assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "params.x"
            assert (await http.delete(f"/rules/{rule_id}")).status_code == 204
            gone = await asyncio.to_thread(other.wait_for, lambda items: rule_id not in items, 30)
            assert gone and (await http.get(f"/rules/{rule_id}")).status_code == 404
    finally:
        for view in (*views, other):
            await view.stop()
        producer.close()
        await store.close()
