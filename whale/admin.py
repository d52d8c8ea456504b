"""Creating and checking the topics of the contract (idempotent)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from whale.errors import TopicError
from whale.settings import WhaleSettings
from whale.topics import TOPICS, TopicSpec


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    action: str  # "created" | "ok" | "mismatch"
    detail: str = ""


def admin_client(settings: WhaleSettings) -> AdminClient:
    return AdminClient(settings.kafka_config())


def ensure_topics(
    settings: WhaleSettings, specs: tuple[TopicSpec, ...] | list[TopicSpec] = TOPICS, *, timeout: float = 30.0
) -> list[TopicReport]:
    """Create missing topics and check existing ones against the contract.

    Raises :class:`TopicError` listing every mismatch (fewer partitions than the contract, or a
    compacted topic that is not compacted). More partitions than the contract is accepted.
    """
    admin = admin_client(settings)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise TopicError(f"Kafka at {settings.kafka_bootstrap} did not answer: {exc}") from None
    reports: list[TopicReport] = []
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.config())
                for s in missing
            ],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                reports.append(TopicReport(name, "created"))
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    reports.append(TopicReport(name, "ok"))
                else:
                    raise TopicError(f"cannot create topic {name}: {exc}") from None
    if missing:
        _wait_for_leaders(admin, [s.name for s in missing], timeout)
    present = [s for s in specs if s.name in existing]
    problems: list[str] = []
    configs = _configs(admin, [s.name for s in present if s.compacted], timeout)
    for spec in present:
        partitions = len(existing[spec.name].partitions)
        detail = ""
        if partitions < spec.partitions:
            detail = f"{partitions} partitions, the contract says {spec.partitions}"
        elif spec.compacted and "compact" not in configs.get(spec.name, {}).get("cleanup.policy", ""):
            detail = "not compacted, the contract says cleanup.policy=compact"
        if detail:
            problems.append(f"{spec.name}: {detail}")
            reports.append(TopicReport(spec.name, "mismatch", detail))
        else:
            reports.append(TopicReport(spec.name, "ok"))
    if problems:
        raise TopicError("topics contradict the contract: " + "; ".join(problems))
    return reports


def topic_max_bytes(settings: WhaleSettings, topic: str, timeout: float = 10.0) -> int | None:
    """The topic's ``max.message.bytes`` (None when Kafka does not answer or the topic is missing)."""
    try:
        configs = _configs(admin_client(settings), [topic], timeout)
        return int(configs[topic]["max.message.bytes"])
    except (KafkaException, KeyError, ValueError, TimeoutError):
        return None


def _configs(admin: AdminClient, names: list[str], timeout: float) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    futures: dict[Any, Any] = admin.describe_configs([ConfigResource("topic", n) for n in names])
    out: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        entries = future.result(timeout)
        out[resource.name] = {k: str(v.value) for k, v in entries.items()}
    return out


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Block until every partition of the new topics has a leader (a fresh topic briefly has none)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        except KafkaException:
            found = {}
        ready = all(
            name in found
            and found[name].error is None
            and found[name].partitions
            and all(p.leader >= 0 and p.error is None for p in found[name].partitions.values())
            for name in names
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise TopicError(f"topics have no partition leader after {timeout}s: {', '.join(names)}")
        time.sleep(0.2)
