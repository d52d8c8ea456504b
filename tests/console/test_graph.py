"""The trace layout: causal rows and columns, timings from the first event and the cause, failures."""

from __future__ import annotations

from typing import Any

from whale_console.graph import failure, layout


def step(id_: str, type_: str, cause: str | None, depth: int, time: str, **extra: Any) -> dict[str, Any]:
    event = {"id": id_, "source": "s", "type": type_, "time": time, **extra}
    return {"kind": "event", "event": event, "causationid": cause, "depth": depth}


def test_each_hop_is_a_row_indented_by_depth_and_joined_to_its_cause() -> None:
    hops, width, height = layout(
        [
            step("a", "alert", None, 0, "2026-01-01T00:00:00Z"),
            step("b", "whale.action.requested", "a", 1, "2026-01-01T00:00:00.5Z"),
            step("c", "whale.action.succeeded", "b", 2, "2026-01-01T00:00:02Z"),
        ]
    )
    assert [h.parent for h in hops] == [None, 0, 1]
    assert hops[0].x < hops[1].x < hops[2].x and hops[0].y < hops[1].y < hops[2].y
    assert hops[2].since_start == 2.0 and hops[2].since_cause == 1.5
    assert width > 0 and height > 3 * 40


def test_dead_letters_failed_results_and_failed_statuses_are_failures_with_their_reason() -> None:
    assert failure({"kind": "dlq", "dlq": {"reason": "schema"}}) == (True, "schema")
    failed = step("x", "whale.action.failed", None, 0, "t", data={"error": {"message": "exit 2"}})
    assert failure(failed) == (True, "exit 2")
    assert failure(step("y", "whale.workflow.task.timed_out", None, 0, "t"))[0]
    assert failure(step("z", "whale.action.succeeded", None, 0, "t")) == (False, "")


def test_a_hop_without_a_readable_time_has_no_timing() -> None:
    hops, _, _ = layout([step("a", "t", None, 0, "not a time")])
    assert hops[0].since_start is None


def test_a_hop_names_the_rule_that_requested_it() -> None:
    requested = step("b", "whale.action.requested", None, 0, "t", data={"rule": {"id": "disk", "version": 3}})
    hops, _, _ = layout([requested])
    assert hops[0].rule == "disk"
