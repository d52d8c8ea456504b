"""The one error contract: structured fields on the base, ``retryable`` read directly, the tree drawn."""

from __future__ import annotations

import re

import pytest
import whale_adapters.errors
import whale_chat.errors
import whale_console.errors
import whale_dispatcher.errors
import whale_event_center.errors
import whale_event_center.rules_api
import whale_event_center.subscriptions_api
import whale_executor.errors
import whale_rule_engine.errors

import whale.errors
import whale.es.store
import whale.rules.model
import whale.rules.operators
import whale.rules.templating
import whale.subscriptions
from whale.errors import DeliveryError, EventError, WhaleError

MODULES = (
    whale.errors,
    whale.rules.operators,
    whale.rules.model,
    whale.subscriptions,
    whale.es.store,
    whale.rules.templating,
    whale_adapters.errors,
    whale_console.errors,
    whale_dispatcher.errors,
    whale_chat.errors,
    whale_event_center.errors,
    whale_event_center.rules_api,
    whale_event_center.subscriptions_api,
    whale_executor.errors,
    whale_rule_engine.errors,
)


def every_error() -> list[type[WhaleError]]:
    seen: list[type[WhaleError]] = []
    todo: list[type[WhaleError]] = [WhaleError]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return [
        c
        for c in seen
        if c.__module__.split(".")[0] in {"whale", *(m.__name__.split(".")[0] for m in MODULES)}
    ]


@pytest.mark.parametrize("cls", every_error(), ids=lambda c: c.__name__)
def test_every_error_is_drawn_in_the_tree_with_its_status_and_code(cls: type[WhaleError]) -> None:
    tree = whale.errors.__doc__ or ""
    lines = [line for line in tree.splitlines() if re.search(rf"[ .]{cls.__name__}\b", line)]
    assert lines, f"{cls.__module__}.{cls.__name__} is missing from the tree in whale/errors.py"
    assert any(f"{cls.status} {cls.code}" in line for line in lines), (cls, lines)
    assert ("(retryable" in " ".join(lines)) == cls.retryable, (cls, lines)


def test_a_single_field_becomes_one_problem_and_the_body_has_every_structured_field() -> None:
    error = EventError("source must be a URI", field="source")
    assert (error.code, error.status, error.field, error.retryable) == ("invalid_event", 400, "source", False)
    assert error.body() == {
        "error": "invalid_event",
        "message": "source must be a URI",
        "problems": [{"field": "source", "message": "source must be a URI"}],
        "retryable": False,
    }


def test_retryable_is_declared_on_the_class_and_may_be_set_per_instance() -> None:
    assert DeliveryError("no ack").retryable is True
    assert DeliveryError("closed", retryable=False).retryable is False
    assert DeliveryError.retryable is True and WhaleError.retryable is False
    assert whale_event_center.errors.Saturated("busy").retryable is True
    assert whale_executor.errors.ActionTimedOut("late").retryable is True


def test_no_error_class_shadows_the_http_status_with_something_else() -> None:
    failed = whale_dispatcher.errors.DeliveryFailed("endpoint answered 500", endpoint_status=500)
    assert (failed.status, failed.endpoint_status, failed.retryable) == (502, 500, True)
