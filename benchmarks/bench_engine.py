"""The rule engine alone on the real Kafka: events produced straight onto ``whale.events``, time until
every action request is on the pool topic.

A real rule engine (``whale run rule-engine``, its own process, its own consumer group, a pool of its
own) with one threshold+regex rule, then with that rule among 1,000 (the others never match). After a
warm-up (one event until its request shows, so the engine is assigned and placed), a burst of EVENTS
matching events is produced (acks=all) and a tail consumer on the pool topic counts the requests.
events/s = EVENTS / (first event sent -> last request read); CPU ms/event = the engine process's
CPU (``/proc/<pid>/stat``) over the same span / EVENTS.

Run alone with ``python -m benchmarks.bench_engine``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from benchmarks import stop_process
from whale import topics
from whale.admin import ensure_topics
from whale.binding import to_binary
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.tail import tail_consumer

TITLE = "Rule engine alone: events on whale.events -> action requests on the pool topic"
KEY = ("rules",)
COMPARE = {"events/s": "max", "CPU ms/event": "min"}
EVENTS = 3_000
SIZES = (1, 1_000)
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rules(directory: Path, type_: str, pool: str, size: int) -> None:
    target = {"kind": "action", "name": "core.noop", "pool": pool}
    rules: list[dict[str, Any]] = [
        {
            "id": "bench-engine-main",
            "match": {
                "all": [
                    {"field": "type", "equals": type_},
                    {"field": "data.value", "greater": 50},
                    {"field": "data.host", "regex": r"^web-\d+$"},
                ]
            },
            "target": target,
            "params": {"host": "{{ data.host }}"},
        }
    ]
    for i in range(size - 1):
        rules.append(
            {
                "id": f"bench-engine-{i:05d}",
                "match": {
                    "all": [
                        {"field": "type", "equals": f"{type_}.other.{i}"},
                        {"field": "data.value", "greater": 50},
                    ]
                },
                "target": target,
            }
        )
    for n, rule in enumerate(rules):
        (directory / f"rule-{n:05d}.yaml").write_text(json.dumps(rule))


def _cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICKS


def _event(type_: str, n: int) -> CloudEvent:
    return CloudEvent.create(
        type=type_,
        source="bench/engine",
        subject=f"web-{n % 7}",
        data={"value": 60 + n % 40, "host": f"web-{n % 7}"},
    )


def _count(consumer: Any, seconds: float) -> int:
    """Messages read within ``seconds`` (without blocking longer)."""
    seen = 0
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return seen
        seen += sum(1 for m in consumer.consume(1000, min(left, 0.05)) if m.error() is None)


def measure(settings: WhaleSettings, size: int) -> dict[str, object]:
    run = uuid.uuid4().hex[:8]
    pool, type_ = f"bench-{run}", f"bench.engine.{run}"
    ensure_topics(settings, [topics.pool_topic_spec(pool)])
    with tempfile.TemporaryDirectory(prefix="whale-bench-engine-") as tmp:
        rules = Path(tmp) / "rules"
        rules.mkdir()
        _rules(rules, type_, pool, size)
        port = _free_port()
        env = {
            **os.environ,
            "WHALE_LOG_LEVEL": "warning",
            "WHALE_RULES_DIR": str(rules),
            "WHALE_RULE_ENGINE_APP_ID": f"whale-bench-engine-{run}",
            "WHALE_RULE_ENGINE_PORT": str(port),
        }
        with open(Path(tmp) / "engine.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "whale", "run", "rule-engine"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                return _burst(settings, proc, port, pool, type_, size, Path(tmp) / "engine.log")
            finally:
                stop_process(proc)
                AdminClient(settings.kafka_config()).delete_topics([topics.actions_topic(pool)])


def _burst(
    settings: WhaleSettings,
    proc: subprocess.Popen[bytes],
    port: int,
    pool: str,
    type_: str,
    size: int,
    log: Path,
) -> dict[str, object]:
    deadline = time.monotonic() + 240
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"rule engine not ready (log: {log.read_text()[-2000:]})")
        time.sleep(0.5)
    consumer = tail_consumer(settings, topics.actions_topic(pool))
    producer = Producer(
        {**settings.kafka_config(), "acks": "all", "linger.ms": 5, "enable.idempotence": True}
    )
    try:
        warm = 0
        while warm == 0:  # until the engine is assigned and placed at the end of whale.events
            message = to_binary(_event(type_, 0))
            producer.produce(topics.EVENTS, message.value, message.key, headers=list(message.headers))
            producer.flush(10)
            warm = _count(consumer, 2.0)
            if time.monotonic() > deadline + 120:
                raise RuntimeError("no action request for the warm-up events")
        _count(consumer, 3.0)  # the other warm-up events' requests
        events = [to_binary(_event(type_, n)) for n in range(EVENTS)]
        cpu, started = _cpu(proc.pid), time.perf_counter()
        for message in events:
            producer.produce(topics.EVENTS, message.value, message.key, headers=list(message.headers))
            producer.poll(0)
        producer.flush(60)
        seen, limit = 0, time.monotonic() + 300
        while seen < EVENTS and time.monotonic() < limit:
            seen += _count(consumer, 0.2)
        elapsed, used = time.perf_counter() - started, _cpu(proc.pid) - cpu
    finally:
        consumer.close()
    if seen < EVENTS:
        raise RuntimeError(f"only {seen} of {EVENTS} action requests within 300 s")
    return {
        "rules": size,
        "events": EVENTS,
        "events/s": EVENTS / elapsed,
        "CPU ms/event": round(used / EVENTS * 1000, 3),
        "wall/CPU": round(elapsed / used, 2) if used else None,
    }


def run() -> list[dict[str, object]]:
    settings = WhaleSettings()
    ensure_topics(settings)
    return [measure(settings, size) for size in SIZES]


def main() -> None:
    from benchmarks import format_table

    print(format_table(TITLE, run()))


if __name__ == "__main__":
    main()
