"""Settings of the console (env prefix ``WHALE_CONSOLE_``), built once in ``main()``."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WHALE_CONSOLE_", extra="ignore", populate_by_name=True)

    whale: WhaleSettings = Field(default_factory=WhaleSettings)

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    api_url: str = Field(
        default="http://127.0.0.1:8080",
        validation_alias=AliasChoices("WHALE_CONSOLE_API_URL", "WHALE_EVENT_CENTER_URL"),
        description="the event center's base URL (every page reads and acts through its API)",
    )
    api_timeout: float = Field(default=15.0, gt=0, description="seconds to wait for the event center")
    dev_mode: bool = Field(
        default=False,
        validation_alias=AliasChoices("WHALE_CONSOLE_DEV_MODE", "WHALE_DEV_MODE"),
        description="no sign-in: every visitor acts as the API's dev-mode caller (the API must be in dev mode)",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="key of the session cookie (every replica needs the same; default: random per process)",
    )
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30, description="a sign-in lasts this long")
    secure_cookie: bool = Field(
        default=False, description="send the session cookie over HTTPS only (set it behind TLS)"
    )
    oidc_token_login: bool = Field(
        default=True, description="the sign-in form also accepts an OIDC JWT (the API checks it)"
    )
