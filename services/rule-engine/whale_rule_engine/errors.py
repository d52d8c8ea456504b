"""Errors of the rule engine (their place in the tree: :mod:`whale.errors`)."""

from __future__ import annotations

from whale.errors import WhaleError


class RuleEngineError(WhaleError, code="rule_engine_error"):
    """Base of the rule engine's errors (``event_id``, ``rule_id``, ``field``)."""

    def __init__(
        self,
        message: str,
        *,
        event_id: str | None = None,
        rule_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, event_id=event_id, rule_id=rule_id, field=field)
        self.event_id = event_id
        self.rule_id = rule_id


class RenderFailed(RuleEngineError, status=400, code="render_failed"):
    """A rule's params or throttle key did not render for an event (the event goes to whale.dlq)."""


class BacktestError(RuleEngineError, code="backtest_failed"):
    """``whale rules test`` cannot read the stored events."""
