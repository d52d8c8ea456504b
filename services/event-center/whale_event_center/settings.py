"""Settings of the event center, its dedupe stage and its indexer (env prefix ``WHALE_EVENT_CENTER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale import topics
from whale.authz import AuthSettings
from whale.resources import event_schemas_dir
from whale.settings import WhaleSettings
from whale.store import StoreSettings

MIB = 1024 * 1024


def default_schemas_dir() -> Path:
    """The JSON Schemas of Whale's own event types, shipped in the ``whale`` package."""
    return event_schemas_dir()


class Settings(BaseSettings):
    """Everything the event center processes read from the environment, built once in ``main()``."""

    model_config = SettingsConfigDict(env_prefix="WHALE_EVENT_CENTER_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    state: StoreSettings = Field(default_factory=StoreSettings, description="local stores (WHALE_STATE_*)")

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="base URL clients use (dataschema URLs); default http://host:port"
    )

    # authentication
    dev_mode: bool = Field(
        default=False,
        validation_alias=AliasChoices("WHALE_EVENT_CENTER_DEV_MODE", "WHALE_DEV_MODE"),
        description="accept events without credentials (never in production)",
    )
    tokens_file: Path | None = Field(default=None, description="YAML/JSON file of hashed sender tokens")
    signature_header: str = "X-Whale-Signature"
    timestamp_header: str = "X-Whale-Timestamp"
    replay_window_seconds: int = Field(
        default=300, gt=0, description="signed requests older or newer than this are refused (401)"
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="people: tokens and OIDC")
    push_hosts: list[str] = Field(
        default_factory=list, description="host globs subscriptions may push to (empty: any host)"
    )

    # limits and backpressure
    max_event_bytes: int = Field(default=MIB, gt=0, description="largest accepted event (413 above)")
    max_request_bytes: int = Field(default=16 * MIB, gt=0, description="largest accepted request body")
    max_batch_events: int = Field(default=1000, gt=0)
    max_in_flight: int = Field(default=5000, gt=0, description="unacknowledged produces before 429")
    produce_timeout_ms: int = Field(default=5000, ge=1000, description="Kafka ack deadline before 503")
    retry_after_seconds: int = Field(default=5, ge=1)

    # topics (overridable so tests and staging can run an isolated pipeline)
    ingest_topic: str = topics.INGEST
    events_topic: str = topics.EVENTS
    indexer_topics: list[str] = Field(
        default_factory=lambda: [topics.EVENTS, "^whale\\.actions.*", topics.RESULTS, topics.DLQ],
        description="topics (or ^regex patterns) the indexer stores",
    )
    dlq_topic: str = topics.DLQ
    offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="where a new dedupe/indexer consumer group starts"
    )

    # schema registry
    schemas_dir: Path | None = Field(default_factory=default_schemas_dir)
    registry_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a schema write")

    # dedupe stage
    dedupe_window_seconds: int = Field(default=24 * 3600, gt=0)
    dedupe_group: str = "whale-dedupe"
    dedupe_changelog: str = "whale.dedupe.changelog"
    dedupe_health_port: int = Field(default=8082, ge=0, le=65535)

    # indexer and search
    index_prefix: str = "whale-events"
    retention_days: int = Field(default=30, gt=0, description="daily indices older than this are deleted")
    indexer_group: str = "whale-indexer"
    indexer_health_port: int = Field(default=8081, ge=0, le=65535)
    indexer_batch: int = Field(default=500, gt=0)
    search_max_size: int = Field(default=500, gt=0)

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
