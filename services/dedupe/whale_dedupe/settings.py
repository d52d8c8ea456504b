"""Settings of the dedupe stage (env prefix ``WHALE_DEDUPE_``), built once in ``main()``.

The stage used to read the event center's variables; those names are still accepted
(``WHALE_EVENT_CENTER_DEDUPE_WINDOW_SECONDS``, ``_DEDUPE_GROUP``, ``_DEDUPE_CHANGELOG``,
``_DEDUPE_HEALTH_PORT``, ``_HOST``, ``_INGEST_TOPIC``, ``_EVENTS_TOPIC``, ``_DLQ_TOPIC``,
``_OFFSET_RESET``, ``_PRODUCE_TIMEOUT_MS`` in milliseconds).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale import topics
from whale.settings import WhaleSettings, seconds_from_ms_env
from whale.store import StoreSettings

OLD = "WHALE_EVENT_CENTER_"


def _env(name: str, old: str | None = None) -> AliasChoices:
    """``WHALE_DEDUPE_<name>``, then the event center's former variable of the same setting."""
    return AliasChoices(f"WHALE_DEDUPE_{name}", OLD + (old or name))


class Settings(BaseSettings):
    """Everything ``whale run dedupe`` reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="WHALE_DEDUPE_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    state: StoreSettings = Field(default_factory=StoreSettings, description="local stores (WHALE_STATE_*)")

    host: str = Field(default="127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(
        default=8082,
        ge=0,
        le=65535,
        validation_alias=_env("PORT", "DEDUPE_HEALTH_PORT"),
        description="/healthz, /readyz, /metrics",
    )
    window: int = Field(
        default=24 * 3600,
        gt=0,
        validation_alias=_env("WINDOW", "DEDUPE_WINDOW_SECONDS"),
        description="seconds a (source, id) is remembered: copies within it are dropped",
    )
    group: str = Field(default="whale-dedupe", validation_alias=_env("GROUP", "DEDUPE_GROUP"))
    changelog: str = Field(
        default="whale.dedupe.changelog",
        validation_alias=_env("CHANGELOG", "DEDUPE_CHANGELOG"),
        description="compacted topic backing the window (same partition count as the ingest topic)",
    )
    ingest_topic: str = Field(default=topics.INGEST, validation_alias=_env("INGEST_TOPIC"))
    events_topic: str = Field(default=topics.EVENTS, validation_alias=_env("EVENTS_TOPIC"))
    dlq_topic: str = Field(default=topics.DLQ, validation_alias=_env("DLQ_TOPIC"))
    offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        validation_alias=_env("OFFSET_RESET"),
        description="where a brand-new consumer group starts",
    )
    produce_timeout: float = Field(
        default=5.0,
        ge=1.0,
        validation_alias=_env("PRODUCE_TIMEOUT"),
        description="seconds to wait for Kafka to acknowledge the changelog writes",
    )

    @model_validator(mode="before")
    @classmethod
    def _former_milliseconds(cls, data: Any) -> Any:
        return seconds_from_ms_env(
            data,
            "produce_timeout",
            "WHALE_DEDUPE_PRODUCE_TIMEOUT",
            OLD + "PRODUCE_TIMEOUT",
            old_ms_env=OLD + "PRODUCE_TIMEOUT_MS",
        )
