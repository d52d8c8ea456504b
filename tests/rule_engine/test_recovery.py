"""The rule engine's table recovery stops the consumer's flow before stream partitions are seeked."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from whale_rule_engine.recovery import SeekFirstRecovery, TableManager


def test_the_app_recovers_its_tables_with_the_seek_first_recovery() -> None:
    """An app configured with the rule engine's TableManager builds a SeekFirstRecovery."""
    app = faust.App("whale-test-recovery", broker="kafka://127.0.0.1:1", TableManager=TableManager)
    assert isinstance(app.tables, TableManager)
    assert isinstance(app.tables.recovery, SeekFirstRecovery)
    assert app.tables.recovery is app.tables.recovery  # built once


def test_flow_is_stopped_before_partitions_are_resumed_and_seeked(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the base recovery resumes the stream partitions, nothing may be fetched yet: the flow
    is already stopped (the base class resumes it after the seek)."""
    seen: list[bool] = []

    async def base(self: Recovery, generation_id: int = 0) -> None:
        assert isinstance(self.app.consumer, Consumer)
        seen.append(self.app.consumer.flow_active)

    monkeypatch.setattr(Recovery, "on_recovery_completed", base)
    app = faust.App("whale-test-recovery-flow", broker="kafka://127.0.0.1:1", TableManager=TableManager)
    consumer: Any = app.consumer
    consumer.resume_flow()
    assert consumer.flow_active
    assert isinstance(app.tables, TableManager)
    asyncio.run(app.tables.recovery.on_recovery_completed(0))
    assert seen == [False]
