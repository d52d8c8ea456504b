"""Hostile templates and rule regexes against the real worker: refused into whale.dlq with their reason,
while the worker keeps serving /healthz and the events sent after them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from whale import topics
from whale.binding import KafkaMessage, from_kafka
from whale.cloudevent import CloudEvent
from whale.producer import EventProducer
from whale.testing import Tap

from .re_helpers import Scope, Worker, send

pytestmark = pytest.mark.integration

TapFactory = Callable[[str, Callable[[KafkaMessage], bool]], Tap]

# Each hostile template and the refusals that may stop it: loops and deep recursion run out of either
# budget first (steps or time), depending on how fast this machine is at that moment.
BUDGET = ("more than 100000 steps", "render took longer than 0.05s")
HOSTILE: dict[str, tuple[str, tuple[str, ...]]] = {
    "pow": ("{{ (7**6000000) % 10 }}", ("power ('**') would have more than",)),
    "repeat": ("{{ 'a' * 100000000 }}", ("repetition ('*') would be larger than",)),
    "loops": ("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}", BUDGET),
    "slow": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        BUDGET,
    ),
    "width": ("{{ '%999999999d' | format(1) }}", ("% formatting would be larger than",)),
}


def rule(
    scope: Scope, name: str, hostile: bool, params: dict[str, Any], *extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": f"{scope.tag}-{name}",
        "match": {
            "all": [
                {"field": "type", "equals": scope.type},
                {"field": "data.hostile", "equals": hostile},
                *extra,
            ]
        },
        "target": {"kind": "action", "name": "create_ticket", "pool": scope.pool},
        "params": params,
    }


def test_hostile_templates_go_to_the_dlq_and_the_next_event_is_still_processed(
    scope: Scope,
    workers: Callable[..., Worker],
    tap: TapFactory,
    producer: EventProducer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = [rule(scope, name, True, {"t": source}) for name, (source, _) in HOSTILE.items()]
    # the regex findings: on RE2 they answer at once (one renders, the other does not match)
    rules.append(
        rule(scope, "redos-filter", True, {"t": "{{ data.s | regex_replace('(a+)+$', 'x') | length }}"})
    )
    rules.append(rule(scope, "redos-match", True, {"t": "never"}, {"field": "data.s", "regex": "^(a+)+$"}))
    rules.append(rule(scope, "fine", False, {"t": "ok {{ data.host }}"}))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for doc in rules:
        (rules_dir / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("WHALE_RULE_ENGINE_RENDER_TIMEOUT", "0.05")

    dlq = tap(topics.DLQ, lambda m: m.header_text("whale_dlq_group") == scope.app_id)
    actions = tap(scope.actions_topic, lambda m: True)
    worker = workers(scope.app_id, rules_dir)
    worker.wait_ready()

    health: list[int] = []
    done = threading.Event()

    def poll_health() -> None:
        while not done.is_set():
            health.append(httpx.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=10).status_code)
            done.wait(0.1)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    hostile = CloudEvent.create(
        type=scope.type,
        source=f"test/{scope.tag}",
        subject="evil",
        data={"hostile": True, "s": "a" * 5000 + "!"},
    )
    normal = CloudEvent.create(
        type=scope.type, source=f"test/{scope.tag}", subject="web-2", data={"hostile": False, "host": "web-2"}
    )
    send(producer, topics.EVENTS, hostile, key="k")
    send(producer, topics.EVENTS, normal, key="k")  # same partition: it waits behind the hostile one

    got = actions.wait_messages(2)
    done.set()
    poller.join(15)
    params = sorted(str(from_kafka(m).data["params"]["t"]) for m in got)
    assert params == ["5001", "ok web-2"]
    letters = dlq.wait_messages(len(HOSTILE))
    assert len(dlq.settle()) == len(HOSTILE)
    reasons = {m.header_text("whale_dlq_rule"): m.header_text("whale_dlq_reason") or "" for m in letters}
    for name, (_, words) in HOSTILE.items():
        assert any(w in reasons[f"{scope.tag}-{name}"] for w in words), reasons
    assert all(m.header_text("ce_id") == hostile.id for m in letters)
    assert health and set(health) == {200}
    assert (
        f'whale_rule_engine_dead_lettered_total{{reason="render_limit"}} {float(len(HOSTILE))}'
        in worker.metrics()
    )
