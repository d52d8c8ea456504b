"""The per-event handlers without Kafka: a fake producer records what the worker would send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from whale_rule_engine.batches import Sends
from whale_rule_engine.handlers import finish_events, handle_event
from whale_rule_engine.runtime import Runtime
from whale_rule_engine.settings import Settings

from whale import topics
from whale.binding import KafkaMessage, from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.rules.model import Rule
from whale.rules.ruleset import RuleSet


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, KafkaMessage]] = []

    async def send_message(self, topic: str, message: KafkaMessage) -> None:
        self.sent.append((topic, message))


@dataclass
class _Record:
    """What Faust hands the agent: a message with its key, value, headers and origin."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    topic: str = topics.EVENTS
    partition: int = 0
    offset: int = 7


def _runtime(producer: _Producer) -> Runtime:
    rules = RuleSet()
    rule = Rule.model_validate(
        {
            "id": "r1",
            "match": {"all": [{"field": "data.value", "greater": 50}]},
            "target": {"kind": "action", "name": "core.noop", "pool": "default"},
            "params": {"host": "{{ data.host }}"},
        }
    )
    rules.set_directory_rules({"r1": rule})
    return Runtime(settings=Settings(), producer=producer, rules=rules)  # type: ignore[arg-type]


def _record(message: KafkaMessage) -> _Record:
    return _Record(message.key, message.value, list(message.headers))


async def _handle(runtime: Runtime, record: _Record) -> list[Any]:
    sends: Sends = []
    found = await handle_event(runtime, record, sends)
    if found is not None:
        await finish_events(runtime, [found], triggers=None)
    return await asyncio.gather(*sends)


def test_a_matching_event_becomes_an_action_request_caused_by_it() -> None:
    producer = _Producer()
    runtime = _runtime(producer)
    event = CloudEvent.create(
        type="alert", source="test/handlers", subject="web-1", data={"value": 99, "host": "web-1"}
    )
    asyncio.run(_handle(runtime, _record(to_binary(event))))
    ((topic, message),) = producer.sent
    request = from_kafka(message)
    assert topic == topics.actions_topic("default")
    assert request.extensions["causationid"] == event.id and request.data["params"] == {"host": "web-1"}


def test_a_malformed_record_is_dead_lettered_with_the_binding_reason() -> None:
    producer = _Producer()
    runtime = _runtime(producer)
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"s"), ("ce_type", b"t")]
    record = _Record(
        None, b'{"value": 99, "host": "web-\\ud800"}', [*headers, ("content-type", b"application/json")]
    )
    asyncio.run(_handle(runtime, record))
    ((topic, message),) = producer.sent
    assert topic == topics.DLQ
    reason = message.header_text("whale_dlq_reason") or ""
    assert reason.startswith("unreadable: ") and "data" in reason and "surrogate" in reason


def test_the_request_record_is_keyed_by_the_idempotency_key() -> None:
    producer = _Producer()
    runtime = _runtime(producer)
    event = CloudEvent.create(type="alert", source="test/handlers", data={"value": 99, "host": "web-2"})
    asyncio.run(_handle(runtime, _record(to_binary(event))))
    ((_, message),) = producer.sent
    assert message.key is not None and message.key.decode().startswith("r1:")
