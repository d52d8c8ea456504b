"""Result events: linked to their request, and checked as the CloudEvent model checks them."""

from __future__ import annotations

import pytest
from whale_executor.results import SUCCEEDED, result_event

from whale.binding import from_kafka, to_binary
from whale.cloudevent import CloudEvent
from whale.correlation import caused_by
from whale.errors import EventError


def request() -> CloudEvent:
    return CloudEvent.create(
        type="whale.action.requested",
        source="/whale/rule-engine",
        data={"idempotency_key": "k1"},
        extensions={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )


def test_a_result_is_the_event_the_model_would_build_linked_to_its_request() -> None:
    cause = request()
    target = {"kind": "action", "name": "core.noop", "pool": "p"}
    made = result_event(
        cause,
        type=SUCCEEDED,
        pool="p",
        request_id=cause.id,
        idempotency_key="k1",
        target=target,
        output={"n": 1},
    )
    model = caused_by(cause, type=SUCCEEDED, source="/whale/executor/p", data=made.data, subject="k1")
    mine, theirs = made.to_structured(), model.to_structured()
    for varying in ("id", "time"):
        mine.pop(varying), theirs.pop(varying)
    assert mine == theirs
    assert from_kafka(to_binary(made)).to_structured() == made.to_structured()  # readers accept it


@pytest.mark.parametrize(
    ("key", "output", "field"),
    [("bad\nkey", None, "subject"), ("k1", {"text": "\ud800"}, "data")],
)
def test_a_result_an_event_cannot_carry_is_refused_naming_the_field(
    key: str, output: object, field: str
) -> None:
    cause = request()
    with pytest.raises(EventError) as err:
        result_event(
            cause,
            type=SUCCEEDED,
            pool="p",
            request_id=cause.id,
            idempotency_key=key,
            target={},
            output=output,
        )
    assert err.value.problems[0]["field"].startswith(field)
