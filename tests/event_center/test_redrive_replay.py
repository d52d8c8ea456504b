"""Where a dead letter is redriven (and under which id), and what a replayed event looks like."""

from __future__ import annotations

from typing import Any

import pytest
from whale_event_center.errors import Conflict
from whale_event_center.redrive import plan
from whale_event_center.replay_api import replayed

from whale.cloudevent import CloudEvent

EVENT = CloudEvent.create(type="t.x", source="urn:s", subject="web-1", data={"a": 1}, correlationid="c1")


def letter(topic: str, event: Any = None, **over: Any) -> dict[str, Any]:
    return {"id": "dlq-1", "kind": "dlq", "topic": topic, "event": event or EVENT.to_structured(), **over}


def test_an_events_dead_letter_goes_back_through_ingest_under_an_id_of_the_dead_letter() -> None:
    first = plan(letter("whale.events"), ingest_topic="whale.ingest", events_topic="whale.events")
    again = plan(letter("whale.events"), ingest_topic="whale.ingest", events_topic="whale.events")
    assert first.topic == "whale.ingest" and first.key == f"urn:s\n{first.event.id}"
    assert first.event.id == again.event.id != EVENT.id  # the same dead letter: the same event (dedupe)
    assert first.event.extensions == {"correlationid": "c1", "redriveof": "dlq-1"}
    assert first.event.data == EVENT.data and first.event.type == EVENT.type


def test_an_action_request_keeps_its_idempotency_key_and_other_topics_get_theirs_back() -> None:
    request = CloudEvent.create(type="whale.action.requested", source="r", data={"idempotency_key": "k9"})
    step = plan(letter("whale.actions.ops", request.to_structured()), ingest_topic="i", events_topic="e")
    assert (step.topic, step.key) == ("whale.actions.ops", "k9")
    assert plan(letter("whale.results"), ingest_topic="i", events_topic="e").topic == "whale.results"


@pytest.mark.parametrize("bad", [{"topic": ""}, {"kind": "unreadable"}, {"event": "not json"}])
def test_what_cannot_be_read_back_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(Conflict):
        plan({**letter("whale.events"), **bad}, ingest_topic="i", events_topic="e")


def test_a_replayed_event_is_new_linked_to_the_original_and_in_the_replays_chain() -> None:
    caused = EVENT.model_copy(update={"extensions": {**EVENT.extensions, "causationid": "x"}})
    dry = replayed(caused, "replay-1", "dry")
    assert dry.id.startswith("replay-1-") and dry.id != EVENT.id
    assert dry.extensions == {"correlationid": "replay-1", "replayof": EVENT.id, "replayid": "replay-1",
                              "replaymode": "dry"}  # fmt: skip
    assert "replaymode" not in replayed(EVENT, "replay-1", "live").extensions
