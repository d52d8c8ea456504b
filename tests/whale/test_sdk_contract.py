"""Contract: every event type Whale emits, as Whale writes it to Kafka, is read by the official
CloudEvents SDK (strict) and by the header rules of the Go, Java and JavaScript SDKs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sdk_strict import read_strict
from whale.binding import to_binary
from whale.cloudevent import CloudEvent
from whale.correlation import caused_by
from whale.topics import TOPICS

EMITTED = sorted({(spec.name, t) for spec in TOPICS for t in spec.event_types})
INTERNAL = [("whale.todos", "whale.todo.saved"), ("whale.events", "whale.todo.requested")]


@pytest.mark.parametrize(("topic", "type_"), EMITTED + INTERNAL)
def test_every_emitted_type_is_read_by_the_sdk_in_strict_mode(topic: str, type_: str) -> None:
    cause = CloudEvent.create(type="test.cause", source="urn:test:cause", subject="host-1", data={"a": 1})
    event = caused_by(cause, type=type_, source="/whale/executor/default", data={"ok": True}, subject="k-1")
    sdk = read_strict(to_binary(event, key=topic))
    assert (sdk.get_id(), sdk.get_type(), sdk.get_subject()) == (event.id, type_, "k-1")
    assert sdk.get_data() == {"ok": True}


def test_an_empty_subject_is_never_written() -> None:
    event = CloudEvent.create(type="whale.todo.requested", source="whale/todo-api", data={}, subject="")
    message = to_binary(event)
    assert message.header("ce_subject") is None
    read_strict(message)


@pytest.mark.parametrize(
    ("content_type", "data"),
    [("text/plain", b"hello"), ("application/xml", b"<a/>"), ("application/octet-stream", b"\xff\x00")],
)
def test_non_json_data_round_trips_through_the_sdk(content_type: str, data: bytes) -> None:
    event = CloudEvent.create(type="t", source="/s", data=data, datacontenttype=content_type)
    sdk = read_strict(to_binary(event))
    assert sdk.get_datacontenttype() == content_type
    assert sdk.get_data() in (data, data.decode("utf-8", "replace"))


@pytest.mark.parametrize(
    "time", ["2016-12-31T23:59:60Z", "2018-04-05T17:31:00.123456789+05:30", "2018-04-05t17:31:00z"]
)
def test_every_accepted_time_is_readable_by_the_sdk(time: str) -> None:
    event = CloudEvent.from_structured(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": time}
    )
    assert read_strict(to_binary(event)).get_time() is not None


def test_long_extension_names_and_utf8_values_are_readable() -> None:
    event = CloudEvent.create(type="t", source="/café", data=None, averyveryverylongextensionname="zürich")
    assert read_strict(to_binary(event)).get_extension("averyveryverylongextensionname") == "zürich"


def test_the_todo_api_never_writes_an_empty_subject() -> None:
    from tests.todo.test_stage import api_client

    client, producer = api_client()
    assert client.post("/todos", json={"title": "check", "subject": ""}).status_code in (201, 202)
    command = producer.sent[0].event
    assert command.subject is None
    read_strict(to_binary(command))


def test_records_built_by_whales_own_builders_are_read_by_the_sdk(tmp_path: Path) -> None:
    from whale_executor.results import SUCCEEDED, result_event
    from whale_todo.settings import Settings as TodoSettings
    from whale_todo.stage import TodoBook, announcement, record

    from whale.rules.model import validate_rule
    from whale.store import LocalStore, StoreSettings

    cause = CloudEvent.create(type="disk.full", source="urn:test:host", subject="db1", data={"host": "db1"})
    rule = validate_rule(
        {
            "id": "r1",
            "match": {"field": "type", "equals": "disk.full"},
            "target": {"kind": "action", "name": "a"},
        }
    )
    store = LocalStore(tmp_path / "book", {"stage": "todo"}, StoreSettings(dir=tmp_path))
    change = TodoBook(TodoSettings(), store).decide(cause, handled=False)
    assert change is not None
    built = [
        rule.to_event(),
        record(change.item),
        announcement(change, cause),
        result_event(
            cause,
            type=SUCCEEDED,
            pool="default",
            request_id="r",
            idempotency_key="k",
            target={},
            output={"ok": 1},
        ),
    ]
    for event in built:
        sdk = read_strict(to_binary(event))
        assert (sdk.get_id(), sdk.get_type()) == (event.id, event.type)
