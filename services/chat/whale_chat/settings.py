"""Settings of the chat adapter (env prefix ``WHALE_CHAT_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings


class Settings(BaseSettings):
    """``whale run chat``: Slack and WeCom callbacks acted on through the event center's API.

    A platform without its credentials answers 404 (it is not served); the process always starts,
    so ``whale up`` runs it and a platform is switched on by setting its secrets.
    """

    model_config = SettingsConfigDict(env_prefix="WHALE_CHAT_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8097, ge=0, le=65535)
    config: Path | None = Field(
        default=None, description="YAML file: users (platform id -> identity), aliases"
    )
    event_center_url: str = Field(default="http://127.0.0.1:8080", description="the event center's base URL")
    token: SecretStr | None = Field(
        default=None, description="a service token with the 'delegate' grant (acts for the mapped people)"
    )
    token_file: Path | None = Field(default=None, description="a file holding that token (instead of token)")
    slack_signing_secret: SecretStr | None = Field(default=None, description="Slack app's signing secret")
    slack_response_hosts: list[str] = Field(
        default_factory=lambda: ["hooks.slack.com"], description="hosts a response_url may point at"
    )
    wecom_token: SecretStr | None = Field(default=None, description="WeCom callback Token")
    wecom_aes_key: SecretStr | None = Field(default=None, description="WeCom EncodingAESKey (43 characters)")
    wecom_corp_id: str | None = Field(default=None, description="WeCom corp id (the receiveid checked)")
    window_seconds: int = Field(default=300, ge=10, le=3600, description="accepted callback timestamp skew")
    max_body: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="event center and response_url calls"
    )
    whale: WhaleSettings = Field(default_factory=WhaleSettings)

    def api_token(self) -> str | None:
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is not None:
            return self.token_file.read_text(encoding="utf-8").strip() or None
        return None
