"""Settings of the rule engine (env prefix ``WHALE_RULE_ENGINE_``), built once in ``main()``."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.enrichment import EnrichmentSettings
from whale.settings import WhaleSettings
from whale.store import StoreSettings


class Settings(BaseSettings):
    """Everything a rule-engine worker reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="WHALE_RULE_ENGINE_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    state: StoreSettings = Field(default_factory=StoreSettings, description="local stores (WHALE_STATE_*)")
    enrich: EnrichmentSettings = Field(
        default_factory=EnrichmentSettings, description="enrichment before matching (WHALE_ENRICH_*)"
    )

    app_id: str = Field(
        default="whale-rule-engine",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$",
        description="Faust app id: the consumer group and the prefix of the engine's internal topics",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8094, ge=0, le=65535, description="/metrics, /healthz and /readyz")
    source: str = Field(
        default="whale/rule-engine", description="CloudEvents source of what the engine emits"
    )
    offset_reset: Literal["earliest", "latest"] = Field(
        default="latest",
        validation_alias=AliasChoices(
            "WHALE_RULE_ENGINE_OFFSET_RESET", "WHALE_RULE_ENGINE_AUTO_OFFSET_RESET"
        ),
        description="where a brand-new consumer group starts on whale.events (was AUTO_OFFSET_RESET, still read)",
    )
    partitions: int = Field(
        default=3, ge=1, description="partitions of the throttle repartition topic and its table"
    )
    session_timeout: float = Field(
        default=10.0, ge=6.0, le=300.0, description="seconds before a silent worker leaves the group"
    )
    render_timeout: float = Field(default=1.0, gt=0, description="seconds one template may render")
    max_param_bytes: int = Field(default=64 * 1024, gt=0, description="largest rendered template output")
    recent_keys: int = Field(
        default=16, ge=0, description="idempotency keys remembered per bucket so redeliveries pass"
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        description="most events (or triggers) handled before their sends are awaited together",
    )
    batch_linger: float = Field(
        default=0.01,
        gt=0,
        le=1.0,
        description="seconds after which a batch the agent left unsettled is settled by a timer",
    )
    sweep_interval: float = Field(
        default=60.0, gt=0, description="seconds between sweeps of a partition's expired throttle buckets"
    )
    bucket_grace: float = Field(
        default=3600.0,
        ge=0,
        description="seconds a refilled bucket is kept after its last trigger (redeliveries pass free)",
    )
    table_store: Literal["rocksdb://", "memory://"] = Field(
        default="rocksdb://",
        description="Faust store of the throttle table (rocksdb://: on disk under WHALE_STATE_DIR)",
    )
    standby_replicas: int = Field(
        default=1, ge=0, description="workers keeping a standby copy of each table partition"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
