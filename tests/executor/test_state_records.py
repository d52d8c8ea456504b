"""How the executor writes its state records: the binary-mode CloudEvent the model would write,
encoded once for the topic and the local store; a record read back as written is not applied again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from whale_executor import secrets
from whale_executor.state import RUN_STATE, StateStore, state_message

from whale import topics
from whale.binding import from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.errors import DeliveryError, EventError
from whale.settings import WhaleSettings
from whale.store import open_store
from whale.testing import FakeProducer


def new_store() -> tuple[StateStore, FakeProducer]:
    producer = FakeProducer()
    local = open_store(f"exec-{uuid.uuid4().hex}", {"stage": "test"})  # under the tests' WHALE_STATE_DIR
    store = StateStore(WhaleSettings(), producer, pool="p", source="/whale/executor/p", local=local)  # type: ignore[arg-type]
    return store, producer


def test_a_state_message_is_what_the_cloudevent_model_would_write() -> None:
    record = {"kind": "action", "status": "started", "input": {"host": "db-1", "n": [1, 2.5, None, "é"]}}
    message = state_message("p/k1", RUN_STATE, "/whale/executor/p", record)
    assert message is not None
    model = to_binary(
        CloudEvent.create(type=RUN_STATE, source="/whale/executor/p", data=record, subject="p/k1"), "p/k1"
    )
    assert (message.key, message.value) == (model.key, model.value)
    names = [name for name, _ in message.headers]
    assert names == [name for name, _ in model.headers]
    event = from_kafka(message)  # a valid event for every reader of the topic (the event center's view)
    assert (event.type, event.subject, event.data) == (RUN_STATE, "p/k1", record)


def test_a_record_the_event_checks_refuse_takes_the_model_path() -> None:
    assert state_message("p/bad\nkey", RUN_STATE, "/s", {"a": 1}) is None
    assert state_message("p/k", RUN_STATE, "/s", {"a": "\ud800"}) is None
    deep: dict[str, object] = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    assert state_message("p/k", RUN_STATE, "/s", deep) is None


def test_put_refuses_what_an_event_cannot_carry_naming_it() -> None:
    store, producer = new_store()
    with pytest.raises(EventError, match="subject"):
        asyncio.run(store.put("p/bad\nkey", {"kind": "action", "status": "started"}))
    assert producer.records == []  # nothing written, so nothing of it runs


def test_put_writes_once_and_stores_the_bytes_written() -> None:
    store, producer = new_store()
    record = asyncio.run(store.put("p/k1", {"kind": "action", "run_id": "act-1", "status": "started"}))
    [(topic, message)] = producer.records
    assert topic == topics.EXECUTOR_STATE
    assert store.local.get(b"dp/k1") == message.value
    assert store.get("p/k1") == record
    assert store.run_key_of("act-1") == "p/k1"


def test_a_record_read_back_as_written_leaves_the_store_as_it_is() -> None:
    store, producer = new_store()
    asyncio.run(store.put("p/k1", {"kind": "action", "status": "started"}))
    finished = asyncio.run(store.put("p/k1", {"kind": "action", "status": "finished"}))
    started_value, finished_value = (m.value for _, m in producer.records)
    store._begin()  # the follower reads both back, in order
    try:
        store._read("p/k1", started_value)  # older (seq 1): ignored
        store._read("p/k1", finished_value)  # as stored: nothing to do
    finally:
        store._applied({0: 2})
    assert store.get("p/k1") == finished
    assert store.local.get(b"dp/k1") == finished_value


def test_a_secret_resolved_in_this_process_is_hidden_in_what_put_writes_and_stores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(secrets, "_known", {"hunter2-token-value"})
    store, producer = new_store()
    asyncio.run(store.put("p/k1", {"kind": "action", "input": {"header": "Bearer hunter2-token-value"}}))
    [(_, message)] = producer.records
    assert message.value is not None and b"hunter2" not in message.value
    assert store.get("p/k1")["input"] == {"header": "Bearer ***"}  # type: ignore[index]


class Msg:
    """A record as the follower reads it from the state topic."""

    def __init__(self, message: Any, partition: int, offset: int) -> None:
        self._message, self._partition, self._offset = message, partition, offset

    def value(self) -> bytes | None:
        return self._message.value  # type: ignore[no-any-return]

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def follow(store: StateStore, records: list[tuple[bytes, Msg]], offsets: dict[int, int]) -> None:
    """One batch of the follower: each record through ``_record``, then the applied offsets."""
    store._begin()
    try:
        for key, msg in records:
            store._record(key, msg)
    finally:
        store._applied(offsets)


def test_our_own_writes_read_back_are_skipped_undecoded_and_their_offsets_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, producer = new_store()
    asyncio.run(store.put("p/k1", {"kind": "action", "status": "started"}))
    finished = asyncio.run(store.put("p/k1", {"kind": "action", "status": "finished"}))
    monkeypatch.setattr(store, "_read", lambda key, value: pytest.fail(f"{key} decoded again"))
    follow(store, [(b"p/k1", Msg(m, 0, offset)) for offset, (_, m) in enumerate(producer.records)], {0: 2})
    assert store.get("p/k1") == finished
    assert store.local.offset(0) == 2
    assert store._own == {} and store._own_keys == {}


def test_records_of_a_previous_incarnation_at_the_same_place_are_applied() -> None:
    """A restarted executor (or one whose store was rebuilt) registered nothing: every record
    the topic holds is applied, the previous incarnation's own ones included."""
    store, producer = new_store()
    asyncio.run(store.put("p/k1", {"kind": "action", "status": "started"}))
    written = producer.records[0][1]
    restarted = StateStore(WhaleSettings(), FakeProducer(), pool="p", source="/s", local=new_store()[0].local)  # type: ignore[arg-type]
    follow(restarted, [(b"p/k1", Msg(written, 0, 0))], {0: 1})
    assert restarted.get("p/k1") == store.get("p/k1")


def test_another_writers_record_of_the_key_read_first_makes_ours_apply_again() -> None:
    """Ours came later on the topic, so it must win, as when every record is applied in order."""
    store, producer = new_store()
    mine = asyncio.run(store.put("p/k1", {"kind": "action", "status": "finished", "by": "me"}))
    other = state_message("p/k1", RUN_STATE, "/s", {**mine, "by": "other", "recorded_at": 1.0})
    assert other is not None
    # the topic holds the other executor's record at offset 0, ours at offset 1 (put saw offset 0)
    store._own = {(0, 1): "p/k1"}
    store._own_keys = {"p/k1": {(0, 1)}}
    follow(store, [(b"p/k1", Msg(other, 0, 0)), (b"p/k1", Msg(producer.records[0][1], 0, 1))], {0: 2})
    assert store.get("p/k1") == mine


def test_a_write_the_follower_read_past_before_put_stored_it_is_not_remembered() -> None:
    store, _ = new_store()
    store._read_to[0] = 5  # the follower applied offsets 0-4 already, ours among them
    asyncio.run(store.put("p/k1", {"kind": "action", "status": "started"}))
    assert store._own == {}


class EchoingProducer(FakeProducer):
    """Calls ``echo`` with each state record before acknowledging it (the follower was faster)."""

    echo: Any = None

    async def send_message(self, topic: str, message: Any) -> Any:
        delivered = await super().send_message(topic, message)
        if self.echo is not None:
            self.echo(message, delivered)
        return delivered


def test_our_own_write_read_back_before_its_acknowledgement_is_applied_once_from_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = EchoingProducer()
    local = open_store(f"exec-{uuid.uuid4().hex}", {"stage": "test"})
    store = StateStore(WhaleSettings(), producer, pool="p", source="/s", local=local)  # type: ignore[arg-type]
    producer.echo = lambda m, d: follow(store, [(b"p/k1", Msg(m, d.partition, d.offset))], {0: d.offset + 1})
    monkeypatch.setattr(store, "_read", lambda key, value: pytest.fail(f"{key} decoded again"))
    applied: list[str] = []
    apply = store._apply

    def counted(key: str, *args: Any, **kwargs: Any) -> None:
        applied.append(key)
        apply(key, *args, **kwargs)

    monkeypatch.setattr(store, "_apply", counted)
    record = asyncio.run(store.put("p/k1", {"kind": "action", "run_id": "act-1", "status": "started"}))
    assert applied == ["p/k1"]  # by the follower, not again by put
    assert store.get("p/k1") == record and store.run_key_of("act-1") == "p/k1"
    assert store.local.offset(0) == 1 and store._sending == {} and store._own == {}


def test_a_write_whose_send_failed_is_left_to_the_follower() -> None:
    store, producer = new_store()
    producer.fail = True
    with pytest.raises(DeliveryError):
        asyncio.run(store.put("p/k1", {"kind": "action", "status": "started"}))
    assert store._sending == {} and store.get("p/k1") is None
