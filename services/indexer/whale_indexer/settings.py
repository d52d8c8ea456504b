"""Settings of the indexer (env prefix ``WHALE_INDEXER_``), built once in ``main()``.

The indexer used to read the event center's variables; those names are still accepted
(``WHALE_EVENT_CENTER_INDEXER_TOPICS``, ``_INDEXER_GROUP``, ``_INDEXER_BATCH``,
``_INDEXER_HEALTH_PORT``, ``_INDEX_PREFIX``, ``_RETENTION_DAYS``, ``_HOST``, ``_DLQ_TOPIC``,
``_OFFSET_RESET``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings
from whale.topics import DLQ, EVENTS, RESULTS

OLD = "WHALE_EVENT_CENTER_"


def _env(name: str, old: str | None = None) -> AliasChoices:
    """``WHALE_INDEXER_<name>``, then the event center's former variable of the same setting."""
    return AliasChoices(f"WHALE_INDEXER_{name}", OLD + (old or name))


class Settings(BaseSettings):
    """Everything ``whale run indexer`` reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="WHALE_INDEXER_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)

    host: str = Field(default="127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        validation_alias=_env("PORT", "INDEXER_HEALTH_PORT"),
        description="/healthz, /readyz, /metrics",
    )
    topics: list[str] = Field(
        default_factory=lambda: [EVENTS, "^whale\\.actions.*", RESULTS, DLQ],
        validation_alias=_env("TOPICS", "INDEXER_TOPICS"),
        description="topics (or ^regex patterns) the indexer stores",
    )
    group: str = Field(default="whale-indexer", validation_alias=_env("GROUP", "INDEXER_GROUP"))
    batch: int = Field(default=500, gt=0, validation_alias=_env("BATCH", "INDEXER_BATCH"))
    index_prefix: str = Field(
        default="whale-events",
        validation_alias=_env("INDEX_PREFIX"),
        description="daily indices <prefix>-YYYY.MM.DD (the event center searches the same prefix)",
    )
    retention_days: int = Field(
        default=30,
        gt=0,
        validation_alias=_env("RETENTION_DAYS"),
        description="daily indices older than this many days are deleted",
    )
    dlq_topic: str = Field(default=DLQ, validation_alias=_env("DLQ_TOPIC"))
    offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        validation_alias=_env("OFFSET_RESET"),
        description="where a brand-new consumer group starts",
    )
