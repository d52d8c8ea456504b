"""Settings of the dispatcher (env prefix ``WHALE_DISPATCHER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.authz import AuthSettings
from whale.settings import WhaleSettings


class Settings(BaseSettings):
    """``whale run dispatcher``: push subscriptions to HTTP endpoints."""

    model_config = SettingsConfigDict(env_prefix="WHALE_DISPATCHER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8096, ge=0, le=65535, description="/status, /metrics, /healthz, /readyz")
    max_batch: int = Field(default=200, ge=1)
    group_prefix: str = "whale-dispatcher"
    whale: WhaleSettings = Field(default_factory=WhaleSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings, description="who may read /status")
