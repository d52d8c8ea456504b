"""Settings of the adapters service (env prefix ``WHALE_ADAPTERS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings


class Settings(BaseSettings):
    """``whale run adapters``: webhooks over HTTP and pollers, publishing into ``whale.ingest``."""

    model_config = SettingsConfigDict(env_prefix="WHALE_ADAPTERS_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    config: Path | None = Field(default=None, description="YAML file with webhooks and pollers")
    dev_mode: bool = Field(
        default=False,
        validation_alias=AliasChoices("dev_mode", "WHALE_ADAPTERS_DEV_MODE", "WHALE_DEV_MODE"),
        description="accept Alertmanager calls without a token (never in production)",
    )
    alertmanager_token: SecretStr | None = Field(default=None, description="bearer token Alertmanager sends")
    alertmanager_source: str = "/adapters/alertmanager"
    validate_schemas: bool = True
    max_body: int = Field(default=5 * 1024 * 1024, ge=1024)
    whale: WhaleSettings = Field(default_factory=WhaleSettings)
