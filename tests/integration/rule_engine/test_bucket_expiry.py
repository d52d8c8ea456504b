"""Throttle buckets that refilled and idled past the grace are swept from the real worker's table."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from whale import topics
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.tail import tail_consumer

from .re_helpers import Scope, Worker, send
from .test_rule_engine_worker import TapFactory, alert, alert_rule, throttled_of, write_rules

pytestmark = pytest.mark.integration


def _partition(bucket: str, partitions: int = 3) -> int:
    """The repartition topic's partition of a bucket (Faust's default partitioner)."""
    return int(murmur2(bucket.encode()) & 0x7FFFFFFF) % partitions


def _changelog(settings: WhaleSettings, topic: str, key: bytes) -> list[bytes | None]:
    """The values written for ``key`` on ``topic`` from its beginning (None: a tombstone)."""
    consumer = tail_consumer(settings, topic, from_start=True)
    found: list[bytes | None] = []
    try:
        quiet = time.monotonic() + 5
        while time.monotonic() < quiet:
            for m in consumer.consume(500, 0.5):
                if m.error() is None:
                    quiet = time.monotonic() + 2
                    if m.key() == key:
                        found.append(m.value())
    finally:
        consumer.close()
    return found


def test_an_expired_bucket_is_tombstoned_and_its_key_passes_again_like_a_new_one(
    re_settings: WhaleSettings,
    scope: Scope,
    workers: Callable[..., Worker],
    tap: TapFactory,
    producer: EventProducer,
    tmp_path: Path,
) -> None:
    """A bucket full again and idle past BUCKET_GRACE is deleted at the next sweep of its partition:
    a tombstone on the changelog, the counter up, and the key's next alert is requested at once."""
    rule = alert_rule(scope, throttle={"key": "{{ data.host }}", "once_within": "2s"})
    rules = write_rules(tmp_path / "rules", rule)
    actions = tap(scope.actions_topic, lambda m: True)
    notices = tap(topics.RESULTS, throttled_of(scope))
    env = {"WHALE_RULE_ENGINE_SWEEP_INTERVAL": "0.5", "WHALE_RULE_ENGINE_BUCKET_GRACE": "1"}
    worker = workers(scope.app_id, rules, env=env)
    worker.wait_ready()
    bucket = f"{rule['id']}\x1fweb-1"
    neighbour = next(
        h for n in range(100) if _partition(f"{rule['id']}\x1f{(h := f'web-{n + 2}')}") == _partition(bucket)
    )
    send(producer, topics.EVENTS, alert(scope, host="web-1"))
    assert len(actions.wait_messages(1)) == 1
    time.sleep(3.5)  # refilled after 2 s, idle past the 1 s grace
    send(producer, topics.EVENTS, alert(scope, host=neighbour))  # a trigger of the same partition sweeps it
    assert len(actions.wait_messages(2)) == 2
    deadline, expired = time.monotonic() + 60, 0.0
    while time.monotonic() < deadline and expired < 1:
        found = re.search(r"^whale_rule_engine_buckets_expired_total (\S+)$", worker.metrics(), re.M)
        expired = float(found.group(1)) if found else 0.0
        time.sleep(0.5)
    assert expired >= 1
    changelog = f"{scope.app_id}-throttle-buckets-changelog"
    written = _changelog(re_settings, changelog, json.dumps(bucket).encode())  # the table's json keys
    assert len(written) >= 2 and written[0] is not None and written[-1] is None
    send(producer, topics.EVENTS, alert(scope, host="web-1"))
    assert len(actions.wait_messages(3)) == 3
    assert notices.settle(2.0) == []
