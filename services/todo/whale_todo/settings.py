"""Settings of the to-do stage (env prefix ``WHALE_TODO_``), built once in ``main()``.

``port``/``host`` were ``health_port``/``health_host``; ``WHALE_TODO_HEALTH_PORT`` and
``WHALE_TODO_HEALTH_HOST`` are still read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.enrichment import EnrichmentSettings
from whale.settings import WhaleSettings
from whale.store import StoreSettings
from whale.todos import SOURCE, parse_priority


class Settings(BaseSettings):
    """Everything ``whale run todo`` reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="WHALE_TODO_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    group: str = "whale-todo"
    source: str = Field(
        default=SOURCE, description="CloudEvents source of the stage's records and announcements"
    )
    offset_reset: Literal["earliest", "latest"] = Field(
        default="latest",
        description="where a brand-new consumer group starts (latest: no to-dos for history)",
    )
    merge_keys: dict[str, str] = Field(
        default_factory=dict,
        description="event type -> merge-key template (default: type + subject; alerts: source + "
        "fingerprint; give an alert's firing and resolved types the same template)",
    )
    ignore_type_prefixes: list[str] = Field(
        default_factory=lambda: ["whale."], description="platform event types that never become to-dos"
    )
    seen_limit: int = Field(default=50, ge=1, description="event ids remembered per item (redelivery)")
    state: StoreSettings = Field(default_factory=StoreSettings, description="local store (WHALE_STATE_*)")
    enrich: EnrichmentSettings = Field(
        default_factory=EnrichmentSettings,
        description="enrichment, as the rule engine's (WHALE_ENRICH_*): handled = some rule matches the enriched event",
    )
    sla: dict[str, float] = Field(
        default_factory=dict,
        description="event type pattern (* wildcards) -> seconds until a new item is due, e.g. "
        '{"prometheus.alert.*": 3600}',
    )
    sla_default: float | None = Field(
        default=86400.0, description="seconds until due for other types (0 or none: no due time)"
    )
    priorities: dict[str, str] = Field(
        default_factory=dict, description="event type pattern -> priority (p1..p4) of new items"
    )
    default_priority: str = Field(default="p3", description="priority when no severity or pattern says")
    overdue_check_seconds: float = Field(
        default=30.0, gt=0, description="how often open items are checked against their due time"
    )
    closed_retention: float = Field(
        default=30 * 24 * 3600.0,
        ge=0,
        description="seconds a closed (resolved) item is kept after its last change; then it is "
        "tombstoned on whale.todos and dropped from the book (0: kept forever)",
    )
    sweep_interval: float = Field(
        default=300.0, gt=0, description="seconds between sweeps for closed items past the retention"
    )
    host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("WHALE_TODO_HOST", "WHALE_TODO_HEALTH_HOST")
    )
    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("WHALE_TODO_PORT", "WHALE_TODO_HEALTH_PORT"),
        description="serve /metrics, /healthz, /readyz here (unset: not served)",
    )

    @field_validator("default_priority")
    @classmethod
    def _priority(cls, value: str) -> str:
        return parse_priority(value)

    @field_validator("priorities")
    @classmethod
    def _priorities(cls, value: dict[str, str]) -> dict[str, str]:
        return {pattern: parse_priority(p) for pattern, p in value.items()}
