"""Executor settings (env prefix ``WHALE_EXECUTOR_``), built once in ``main()``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings
from whale.topics import DEFAULT_POOL


class Settings(BaseSettings):
    """One executor process of one pool."""

    model_config = SettingsConfigDict(env_prefix="WHALE_EXECUTOR_", extra="ignore")

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    pool: str = Field(default=DEFAULT_POOL, description="executor pool: which requests topic to consume")
    catalog_dirs: list[Path] = Field(
        default_factory=list, description="directories with action and workflow YAML files"
    )
    python_modules: list[str] = Field(
        default_factory=list, description="extra modules whose PythonAction objects join the catalogue"
    )
    entry_points: bool = Field(default=True, description="load Python actions of the `whale.actions` group")
    concurrency: int = Field(default=16, ge=1, description="actions running at the same time")
    max_pending: int = Field(default=1000, ge=1, description="requests received and not finished")
    max_items: int = Field(
        default=1000, ge=1, description="items a workflow task's with_items may fan out over (more: it fails)"
    )
    items_output_budget: int = Field(
        default=128 * 1024,
        ge=1024,
        description="characters of JSON a fan-out keeps of its items' outputs and errors, shared among the"
        " items (at least 256 each); the rest is cut, so a run's state stays one Kafka record",
    )
    health_host: str = "127.0.0.1"
    health_port: int | None = Field(default=None, description="serve /metrics and /healthz on this port")
    session_timeout_ms: int = Field(default=10_000, ge=6_000)
    revoke_grace: float = Field(
        default=20.0,
        ge=0,
        le=150,
        description="seconds the requests of partitions revoked by a rebalance get to finish before they"
        " are cancelled (and resumed by the new owner as interrupted runs); the rebalance waits that long,"
        " so it stays well below max.poll.interval.ms (300 s)",
    )
    state_retention: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="seconds a finished run stays recorded (a redelivered request is answered from it);"
        " then it is tombstoned on whale.executor.state",
    )
    sweep_interval: float = Field(default=300.0, gt=0, description="seconds between retention sweeps")
    approvals: bool = Field(default=True, description="follow whale.events for approval decisions")
