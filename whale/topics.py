"""The topic contract: every Kafka topic Whale uses, in one place.

``schemas/asyncapi.yaml`` documents the same channels; a test checks that the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000

EVENTS = "whale.events"
INGEST = "whale.ingest"
ACTIONS = "whale.actions"
RESULTS = "whale.results"
DLQ = "whale.dlq"
SCHEMAS = "whale.schemas"
RULES = "whale.rules"
CATALOG = "whale.catalog"
SUBSCRIPTIONS = "whale.subscriptions"
EXECUTOR_STATE = "whale.executor.state"
ADAPTER_STATE = "whale.adapters.state"
TODOS = "whale.todos"
TOKENS = "whale.tokens"
DEFAULT_POOL = "default"
POOL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
AUDIT_TYPES: tuple[str, ...] = tuple(
    f"whale.audit.{kind}"
    for kind in (
        "rule.saved",
        "rule.deleted",
        "rule.rolled_back",
        "schema.registered",
        "subscription.saved",
        "subscription.deleted",
        "token.created",
        "token.revoked",
        "todo.opened",
        "dlq.redriven",
        "events.replayed",
        "todo.claim",
        "todo.unclaim",
        "todo.comment",
        "todo.resolve",
    )
)
"""Audit events (:mod:`whale.audit`): who changed what, carried on whale.events and indexed."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: name, partitions, retention or compaction, and the event types it carries."""

    name: str
    partitions: int
    description: str
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    event_types: tuple[str, ...] = field(default_factory=tuple)

    def config(self) -> dict[str, str]:
        """Topic-level configuration Kafka is given when the topic is created."""
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": str(DAY_MS)}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        INGEST,
        3,
        "Events accepted by the event center, before deduplication (keyed by source + id).",
        retention_ms=1 * DAY_MS,
    ),
    TopicSpec(
        EVENTS,
        3,
        "Every validated, deduplicated event on the bus (keyed by partition key).",
        event_types=(
            "prometheus.alert.firing",
            "prometheus.alert.resolved",
            "whale.approval.granted",
            "whale.approval.denied",
            "whale.run.cancel.requested",
            "whale.run.pause.requested",
            "whale.run.resume.requested",
            *AUDIT_TYPES,
        ),
    ),
    TopicSpec(
        ACTIONS,
        3,
        "Action and workflow requests for the default executor pool.",
        event_types=("whale.action.requested",),
    ),
    TopicSpec(
        RESULTS,
        3,
        "Results of actions and workflows, throttle notices and to-do changes.",
        event_types=(
            "whale.action.succeeded",
            "whale.action.failed",
            "whale.action.timed_out",
            "whale.action.abandoned",
            "whale.action.cancelled",
            "whale.workflow.started",
            "whale.workflow.completed",
            "whale.workflow.failed",
            "whale.workflow.cancelled",
            "whale.workflow.task.started",
            "whale.workflow.task.waiting",
            "whale.workflow.task.succeeded",
            "whale.workflow.task.failed",
            "whale.workflow.task.timed_out",
            "whale.workflow.task.abandoned",
            "whale.rule.throttled",
            "whale.rule.dryrun",
            "whale.todo.created",
            "whale.todo.updated",
            "whale.todo.resolved",
        ),
    ),
    TopicSpec(
        DLQ,
        1,
        "Messages that could not be processed, with reason and origin headers.",
        retention_ms=30 * DAY_MS,
    ),
    TopicSpec(
        SCHEMAS,
        1,
        "Event-type JSON Schemas, one record per type (compacted).",
        compacted=True,
        event_types=("whale.schema.registered",),
    ),
    TopicSpec(
        RULES,
        1,
        "Rule definitions, one record per rule id (compacted).",
        compacted=True,
        event_types=("whale.rule.saved",),
    ),
    TopicSpec(
        CATALOG,
        1,
        "Executor action and workflow catalogues, one record per pool (compacted).",
        compacted=True,
        event_types=("whale.catalog.published",),
    ),
    TopicSpec(
        SUBSCRIPTIONS,
        1,
        "Push subscriptions, one record per subscription (compacted).",
        compacted=True,
        event_types=("whale.subscription.saved",),
    ),
    TopicSpec(
        EXECUTOR_STATE,
        3,
        "Executor run and workflow state, one record per run (compacted).",
        compacted=True,
        event_types=(
            "whale.executor.run",
            "whale.executor.approval",
            "whale.executor.cancel",
            "whale.executor.pause",
        ),
    ),
    TopicSpec(
        ADAPTER_STATE,
        1,
        "Poller snapshots and open alert episodes, one record per poller or alert (compacted).",
        compacted=True,
        event_types=("whale.adapter.poller.state", "whale.adapter.alert.state"),
    ),
    TopicSpec(TODOS, 1, "To-do items for people, one record per item (compacted).", compacted=True),
    TopicSpec(
        TOKENS,
        1,
        "Personal API tokens (sha256 only, expiry, revocation), one record per token id (compacted).",
        compacted=True,
        event_types=("whale.token.saved",),
    ),
)

BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}


def actions_topic(pool: str = DEFAULT_POOL) -> str:
    """The requests topic of an executor pool: ``whale.actions`` for ``default``, else
    ``whale.actions.<pool>``. Pool names are lower-case letters, digits and dashes."""
    if not POOL_NAME.match(pool):
        raise ValueError(f"invalid pool name {pool!r}: use 1-40 lower-case letters, digits or dashes")
    return ACTIONS if pool == DEFAULT_POOL else f"{ACTIONS}.{pool}"


def pool_topic_spec(pool: str) -> TopicSpec:
    """The spec of a pool's requests topic (same shape as ``whale.actions``)."""
    base = BY_NAME[ACTIONS]
    return TopicSpec(
        actions_topic(pool),
        base.partitions,
        f"Action requests for pool {pool!r}.",
        event_types=base.event_types,
    )


BUS_TOPICS: tuple[str, ...] = (EVENTS, ACTIONS, RESULTS, DLQ)
"""The topics the indexer stores in Elasticsearch."""
