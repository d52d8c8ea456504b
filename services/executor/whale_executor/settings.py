"""Executor settings (env prefix ``WHALE_EXECUTOR_``), built once in ``main()``.

``host``/``port`` were ``health_host``/``health_port`` and ``session_timeout`` (seconds) was
``session_timeout_ms``; ``WHALE_EXECUTOR_HEALTH_HOST``, ``_HEALTH_PORT`` and ``_SESSION_TIMEOUT_MS``
(milliseconds) are still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings, seconds_from_ms_env
from whale.store import StoreSettings
from whale.topics import DEFAULT_POOL


class Settings(BaseSettings):
    """One executor process of one pool."""

    model_config = SettingsConfigDict(env_prefix="WHALE_EXECUTOR_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    state: StoreSettings = Field(default_factory=StoreSettings, description="local store (WHALE_STATE_*)")
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
    max_workflow_depth: int = Field(
        default=5,
        ge=1,
        description="workflows a chain of workflow tasks may nest (a workflow running none counts 1);"
        " deeper catalogues are refused at load",
    )
    items_output_budget: int = Field(
        default=128 * 1024,
        ge=1024,
        description="characters of JSON a fan-out keeps of its items' outputs and errors, shared among the"
        " items (at least 256 each); the rest is cut, so a run's state stays one Kafka record",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("WHALE_EXECUTOR_HOST", "WHALE_EXECUTOR_HEALTH_HOST"),
    )
    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("WHALE_EXECUTOR_PORT", "WHALE_EXECUTOR_HEALTH_PORT"),
        description="serve /metrics, /healthz and /readyz on this port (unset: not served)",
    )
    session_timeout: float = Field(
        default=10.0, ge=6.0, description="seconds before a silent executor leaves its groups"
    )
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
    inventory: list[Path] = Field(
        default_factory=list, description="inventory YAML files or directories: the hosts SSH actions act on"
    )
    inventory_topic: str = Field(
        default="whale.inventory",
        description="also follow this compacted topic of hosts (published by `whale hosts publish`), live;"
        " the inventory files above win over a topic host of the same name; empty: files only",
    )
    ssh_known_hosts: Path = Field(
        default_factory=lambda: Path.home() / ".ssh" / "known_hosts",
        description="known_hosts file every SSH host key is checked against",
    )
    ssh_trust_on_first_use: bool = Field(
        default=False,
        description="accept the key of a host not yet in known_hosts once, and append it there",
    )
    ssh_per_host: int = Field(default=4, ge=1, description="SSH sessions open at once per host")
    ssh_connect_timeout: float = Field(default=10.0, gt=0, description="seconds to connect and log in")
    ssh_reuse: bool = Field(default=True, description="share one SSH connection per host between actions")
    ssh_idle: float = Field(
        default=60.0, gt=0, description="seconds an unused pooled SSH connection stays open"
    )

    @model_validator(mode="before")
    @classmethod
    def _former_milliseconds(cls, data: Any) -> Any:
        return seconds_from_ms_env(data, "session_timeout", old_ms_env="WHALE_EXECUTOR_SESSION_TIMEOUT_MS")
