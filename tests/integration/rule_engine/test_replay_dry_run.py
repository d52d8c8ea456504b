"""A dry-run replay on the real Kafka and Elasticsearch: stored events re-enter ``whale.events`` as
new events linked to the originals (in their order), a real rule-engine worker records what it would
request (``whale.rule.dryrun``) and nothing reaches the pool's actions topic."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from whale_event_center.settings import Settings as CenterSettings

from tests.integration.event_center.live import AppThread, admin_token
from tests.ports import free_port
from whale import topics
from whale.binding import KafkaMessage, from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.es.documents import document
from whale.es.store import Store
from whale.settings import WhaleSettings
from whale.testing import Tap

from .re_helpers import Scope, Worker
from .test_rule_engine_worker import alert, alert_rule, write_rules

pytestmark = pytest.mark.integration
TapFactory = Callable[[str, Callable[[KafkaMessage], bool]], Tap]


def store_events(stack: WhaleSettings, prefix: str, events: list[CloudEvent]) -> None:
    """The events as the indexer stores what it reads from ``whale.events``."""
    now = int(time.time() * 1000)
    docs = [
        document(to_binary(e), topic=topics.EVENTS, partition=0, offset=i, timestamp_ms=now + i)
        for i, e in enumerate(events)
    ]
    store = Store(stack.es_url, prefix)

    async def write() -> None:
        try:
            await store.ensure_template()
            await store.bulk([(store.index_for(d.when), d.doc_id, d.body) for d in docs])
            await store.refresh()
        finally:
            await store.close()

    asyncio.run(write())


def test_a_dry_run_replay_records_what_rules_would_do_and_triggers_nothing(
    re_settings: WhaleSettings, scope: Scope, workers: Callable[..., Worker], tap: TapFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", alert_rule(scope))
    actions = tap(scope.actions_topic, lambda m: True)
    dry_runs = tap(topics.RESULTS, lambda m: m.header_text("ce_type") == "whale.rule.dryrun")
    replayed = tap(topics.EVENTS, lambda m: m.header_text("ce_type") == scope.type)
    worker = workers(scope.app_id, rules)
    start = datetime.now(UTC) - timedelta(minutes=1)
    originals = [
        alert(scope, host="web-1", value=91.0),
        alert(scope, host="web-2", value=95.0),
        alert(scope, host="web-1", value=10.0),  # matches no rule
    ]
    for i, event in enumerate(originals):
        originals[i] = event.model_copy(update={"time": start + timedelta(seconds=i)})
    prefix = f"test-replay-{uuid.uuid4().hex[:10]}"
    store_events(re_settings, prefix, originals)
    worker.wait_ready()
    settings = CenterSettings(whale=re_settings, port=free_port(), schemas_dir=None, index_prefix=prefix)
    with AppThread(settings) as center:
        center.wait_ready()
        env = {**os.environ, "WHALE_EVENT_CENTER_URL": center.url, "WHALE_TOKEN": admin_token(re_settings)}
        answer = subprocess.run(
            [sys.executable, "-m", "whale", "events", "replay", "--since", start.isoformat(),
             "--filter", f"type={scope.type}"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    replay_id = answer.stdout.split(":")[0]
    assert "3 events replayed (dry)" in answer.stdout
    copies = [m for m in replayed.wait_messages(3) if m.header_text("ce_replayid") == replay_id]
    # written one after the other in the originals' order (the tap may interleave partitions)
    by_original = {m.header_text("ce_replayof") or "": m for m in copies}
    assert sorted(by_original) == sorted(e.id for e in originals)
    written = [replayed.written_ms(by_original[e.id]) for e in originals]
    assert written == sorted(written), written
    assert all(m.header_text("ce_replaymode") == "dry" for m in copies)
    records = dry_runs.wait_messages(2)
    mine = [m for m in records if m.header_text("ce_correlationid") == replay_id]
    assert len(mine) == 2, [m.header_text("ce_correlationid") for m in records]
    would = [from_kafka(m).data["would_request"] for m in mine]
    assert sorted(w[0]["params"]["title"] for w in would) == ["disk full on web-1", "disk full on web-2"]
    assert actions.settle(3.0) == []  # nothing was requested
