"""What the rule engine's agents share: settings, the producer, the live rules, the catalogue view,
the render thread, and the dead-letter path."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog

from whale import topics
from whale.admin import ensure_topics
from whale.binding import KafkaMessage, headers_from
from whale.compacted import CompactedView
from whale.dead_letter import write_dead_letter
from whale.enrichment import NO_ENRICHMENT, Enricher
from whale.health import HealthServer
from whale.producer import EventProducer
from whale.rules.ruleset import RuleSet
from whale_rule_engine import metrics
from whale_rule_engine.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """What the agents share: settings, the producer, the live rules and the catalogue view."""

    settings: Settings
    producer: EventProducer
    rules: RuleSet
    catalog: CompactedView | None = None
    enricher: Enricher = NO_ENRICHMENT
    views: list[CompactedView] = field(default_factory=list)
    ensured_pools: set[str] = field(default_factory=lambda: {topics.DEFAULT_POOL})
    health_server: HealthServer | None = None
    # renders run here, off the event loop: /healthz, heartbeats and commits go on while a rule
    # spends its render budget (every sandbox operation is bounded, so the thread never holds the
    # interpreter for long; see whale.rules.limits)
    render_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
    )

    async def dead_letter(
        self, message: KafkaMessage, reason: str, *, origin: Any, rule_id: str = "", kind: str = ""
    ) -> None:
        await write_dead_letter(
            self.producer,
            message,
            reason=reason,
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            group=self.settings.app_id,
            headers=[("whale_dlq_rule", rule_id.encode())] if rule_id else (),
        )
        metrics.DEAD_LETTERED.labels(reason=kind or ("render" if rule_id else "unreadable")).inc()
        if rule_id:
            log.warning("render_failed", rule_id=rule_id, reason=reason)

    async def failed(self, message: Any, exc: BaseException, prefix: str) -> None:
        """Dead-letter the Faust ``message`` whose handling (or one of its sends) failed with ``exc``."""
        raw = KafkaMessage(message.key, message.value, headers_from(message.headers))
        await self.dead_letter(raw, f"{prefix}: {type(exc).__name__}: {exc}", origin=message)

    async def ensure_pool(self, pool: str) -> None:
        if pool in self.ensured_pools:
            return
        spec = topics.pool_topic_spec(pool)
        await asyncio.to_thread(ensure_topics, self.settings.whale, [spec])
        self.ensured_pools.add(pool)
