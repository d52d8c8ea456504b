"""Settings of the event center's HTTP API (env prefix ``WHALE_EVENT_CENTER_``).

The dedupe stage and the indexer have their own (``whale_dedupe.settings``, ``whale_indexer.settings``);
they still accept the ``WHALE_EVENT_CENTER_`` variables they used to share with this class.
Durations are seconds; the former ``WHALE_EVENT_CENTER_PRODUCE_TIMEOUT_MS`` (milliseconds),
``_REPLAY_WINDOW_SECONDS`` and ``_RETRY_AFTER_SECONDS`` are still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale import topics
from whale.authz import AuthSettings
from whale.resources import event_schemas_dir
from whale.settings import WhaleSettings, seconds_from_ms_env
from whale.store import StoreSettings

MIB = 1024 * 1024


def default_schemas_dir() -> Path:
    """The JSON Schemas of Whale's own event types, shipped in the ``whale`` package."""
    return event_schemas_dir()


class Settings(BaseSettings):
    """Everything ``whale run event-center`` reads from the environment, built once in ``main()``."""

    model_config = SettingsConfigDict(env_prefix="WHALE_EVENT_CENTER_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    state: StoreSettings = Field(
        default_factory=StoreSettings, description="local store of the runs view (WHALE_STATE_*)"
    )

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
    replay_window: int = Field(
        default=300,
        gt=0,
        validation_alias=AliasChoices(
            "WHALE_EVENT_CENTER_REPLAY_WINDOW", "WHALE_EVENT_CENTER_REPLAY_WINDOW_SECONDS"
        ),
        description="seconds: signed requests older or newer than this are refused (401)",
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
    produce_timeout: float = Field(
        default=5.0, ge=1.0, description="seconds Kafka has to acknowledge a write before the answer is 503"
    )
    retry_after: int = Field(
        default=5,
        ge=1,
        validation_alias=AliasChoices(
            "WHALE_EVENT_CENTER_RETRY_AFTER", "WHALE_EVENT_CENTER_RETRY_AFTER_SECONDS"
        ),
        description="seconds a 429/503 answer's Retry-After asks the client to wait",
    )

    # topics (overridable so tests and staging can run an isolated pipeline)
    ingest_topic: str = topics.INGEST
    events_topic: str = Field(
        default=topics.EVENTS, description="the bus: approvals, run commands, redrives and replays go here"
    )

    # schema registry
    schemas_dir: Path | None = Field(default_factory=default_schemas_dir)
    registry_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a schema write")

    # search (the indexer writes the same indices: WHALE_INDEXER_INDEX_PREFIX)
    index_prefix: str = "whale-events"
    search_max_size: int = Field(default=500, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _former_milliseconds(cls, data: Any) -> Any:
        return seconds_from_ms_env(
            data,
            "produce_timeout",
            "WHALE_EVENT_CENTER_PRODUCE_TIMEOUT",
            old_ms_env="WHALE_EVENT_CENTER_PRODUCE_TIMEOUT_MS",
        )

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
