"""`whale rules test` over events stored in the real Elasticsearch, and `whale rules explain` with
rules read from the real whale.rules topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from whale import topics
from whale.binding import KafkaMessage
from whale.cli import main as whale_main
from whale.cloudevent import CloudEvent, format_time
from whale.compacted import delete, put
from whale.producer import EventProducer
from whale.rules.model import validate_rule
from whale.settings import WhaleSettings
from whale.testing import Tap

from .re_helpers import Scope

pytestmark = pytest.mark.integration

# The indexer's layout (whale/es/store.py, documents.py).
MAPPING = {
    "mappings": {
        "dynamic": False,
        "properties": {
            "doc_id": {"type": "keyword"},
            "kind": {"type": "keyword"},
            "topic": {"type": "keyword"},
            "type": {"type": "keyword"},
            "time": {"type": "date"},
            "raw": {"type": "keyword", "index": False, "doc_values": False},
        },
    }
}


@pytest.fixture
def es_index(re_settings: WhaleSettings, scope: Scope) -> Iterator[str]:
    name = f"whale-events-retest-{scope.tag}"
    with httpx.Client(base_url=re_settings.es_url, timeout=30) as es:
        assert es.put(f"/{name}", json=MAPPING).status_code == 200
        yield name
        es.delete(f"/{name}")


def store(settings: WhaleSettings, index: str, events: list[CloudEvent], topic: str = topics.EVENTS) -> None:
    lines = []
    for n, event in enumerate(events):
        doc = {
            "doc_id": f"{topic}-{n:05d}",
            "kind": "event",
            "topic": topic,
            "type": event.type,
            "time": format_time(event.time) if event.time else None,
            "raw": json.dumps(event.to_structured()),
        }
        lines += [json.dumps({"index": {"_index": index, "_id": doc["doc_id"]}}), json.dumps(doc)]
    body = "\n".join(lines) + "\n"
    with httpx.Client(base_url=settings.es_url, timeout=30) as es:
        answer = es.post(
            "/_bulk",
            params={"refresh": "true"},
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 200 and not answer.json()["errors"]


def test_rules_test_replays_stored_events_and_triggers_nothing(
    re_settings: WhaleSettings,
    scope: Scope,
    es_index: str,
    tap: Callable[[str, Callable[[KafkaMessage], bool]], Tap],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A draft rule over the last 24h: what it would trigger and what its throttle would suppress."""
    now = datetime.now(UTC)
    old = now - timedelta(days=3)

    def alert(host: str, value: float, when: datetime) -> CloudEvent:
        return CloudEvent.create(
            type=scope.type, source="test/bt", data={"host": host, "value": value}, time=when
        )

    events = [alert("web-1", 90, now - timedelta(hours=2, seconds=-i)) for i in range(20)]
    events += [alert("web-2", 95, now - timedelta(hours=1)), alert("web-3", 10, now - timedelta(hours=1))]
    events += [alert("web-1", 99, now - timedelta(minutes=30)), alert("web-9", 99, old)]
    store(re_settings, es_index, events)
    store(re_settings, es_index, [alert("web-5", 99, now)], topic=topics.ACTIONS)  # not an input event
    rule = {
        "id": f"{scope.tag}-draft",
        "match": {"all": [{"field": "type", "equals": scope.type}, {"field": "data.value", "greater": 85}]},
        "target": {"kind": "action", "name": "create_ticket", "pool": scope.pool},
        "params": {"title": "disk on {{ data.host }}"},
        "throttle": {"key": "{{ data.host }}", "once_within": "1h"},
    }
    (tmp_path / "draft.yaml").write_text(yaml.safe_dump(rule))
    actions = tap(scope.actions_topic, lambda m: True)
    code = whale_main(
        ["rules", "test", str(tmp_path / "draft.yaml"), "--since", "24h", "--index", es_index, "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scanned"] == 23 and report["matched"] == 22
    assert report["would_trigger"] == 3 and report["would_suppress"] == 19
    assert report["suppressed_by_key"] == {"web-1": 19}
    assert [t["params"]["title"] for t in report["triggers"]] == [
        "disk on web-1",
        "disk on web-2",
        "disk on web-1",
    ]
    whale_main(["rules", "test", str(tmp_path / "draft.yaml"), "--since", "24h", "--index", es_index])
    assert "would trigger 3, throttle would suppress 19" in capsys.readouterr().out
    assert actions.settle(2.0) == []


def test_rules_explain_reads_rules_from_the_topic(
    re_settings: WhaleSettings, scope: Scope, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`whale rules explain` shows the match, and the near miss with the failed criterion and value."""
    hit = validate_rule(
        {
            "id": f"{scope.tag}-hit",
            "match": {"field": "type", "equals": scope.type},
            "target": {"kind": "action", "name": "a"},
            "params": {"host": "{{ data.host }}"},
        }
    )
    near = validate_rule(
        {
            "id": f"{scope.tag}-near",
            "match": {
                "all": [{"field": "type", "equals": scope.type}, {"field": "data.value", "greater": 85}]
            },
            "target": {"kind": "action", "name": "a"},
        }
    )
    producer = EventProducer(re_settings)

    async def save(remove: bool = False) -> None:
        for rule in (hit, near):
            if remove:
                await delete(producer, topics.RULES, rule.id)
            else:
                await put(producer, topics.RULES, rule.id, rule.to_event())

    try:
        asyncio.run(save())
        event = CloudEvent.create(type=scope.type, source="test/explain", data={"host": "web-1", "value": 40})
        (tmp_path / "event.json").write_text(json.dumps(event.to_structured()))
        assert whale_main(["rules", "explain", str(tmp_path / "event.json"), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert [m["rule"] for m in result["matched"]] == [hit.id]
        assert result["matched"][0]["params"] == {"host": "web-1"}
        mine = [n for n in result["near_misses"] if n["rule"] == near.id]
        assert mine and mine[0]["failed"][0]["field"] == "data.value" and mine[0]["failed"][0]["value"] == 40
    finally:
        asyncio.run(save(remove=True))
        producer.close()
