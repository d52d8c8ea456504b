"""Typed settings read from the environment (prefix ``WHALE_``).

Each service defines its own ``Settings`` subclass with its own prefix and embeds
:class:`WhaleSettings` for what every process shares (Kafka, Elasticsearch, logging).
Settings are built once in ``main()`` and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.eventloop import EventLoop, HttpParser

KAFKA_LOGGER = logging.getLogger("whale.kafka")
DEFAULT_REDACT_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "access_key",
    "client_secret",
    "credentials",
    "cookie",
)
"""librdkafka's own log lines go through logging (and so through structlog's format), not raw stderr."""


RULES_DIR_NAMES = ("WHALE_RULES_DIR", "WHALE_RULE_ENGINE_RULES_DIR", "WHALE_TODO_RULES_DIR")
"""The rules directory's variable, then its former per-stage names (still read, first one set wins)."""


def seconds_from_ms_env(data: Any, field: str, *names: str, old_ms_env: str) -> Any:
    """For a duration setting in seconds that was a ``*_MS`` one (settings name durations in seconds,
    never in milliseconds): when ``data`` (a settings class's raw input, in a ``mode="before"``
    model validator) has no value for ``field`` (under its name or any of ``names``, its variables)
    and the former variable ``old_ms_env`` is set, use that many milliseconds as seconds."""
    if not isinstance(data, dict) or any(key in data for key in (field, *names)):
        return data
    old = os.environ.get(old_ms_env)
    if old is None or not old.strip():
        return data
    try:
        return {**data, field: float(old) / 1000}
    except ValueError:
        raise ValueError(f"{old_ms_env} must be a number of milliseconds, not {old!r}") from None


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "whale"


class KafkaSecurity(BaseSettings):
    """TLS/SASL options for a user's own Kafka cluster (all optional for the local stack)."""

    model_config = SettingsConfigDict(env_prefix="WHALE_KAFKA_", extra="ignore")

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(default=None, repr=False)
    ssl_ca_location: str | None = None

    def librdkafka_config(self) -> dict[str, str]:
        """The librdkafka properties for these options (secrets included: never log the result)."""
        conf: dict[str, str] = {"security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf


class WhaleSettings(BaseSettings):
    """What every Whale process shares. Env: ``WHALE_KAFKA_BOOTSTRAP``, ``WHALE_ES_URL``, ...

    ``WHALE_RULES_DIR`` (also read as ``WHALE_RULE_ENGINE_RULES_DIR`` or ``WHALE_TODO_RULES_DIR``,
    their former names) is the one rules directory of every stage that matches rules.
    """

    model_config = SettingsConfigDict(env_prefix="WHALE_", extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    es_url: str = Field(default="http://127.0.0.1:9200", description="Elasticsearch URL")
    es_username: str | None = None
    es_password: str | None = Field(default=None, repr=False)
    cache_dir: Path = Field(default_factory=default_cache_dir, description="downloads and local data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    event_loop: EventLoop = Field(
        default="uvloop",
        description="asyncio event loop of every process (uvloop falls back to asyncio if absent)",
    )
    http_parser: HttpParser = Field(
        default="httptools", description="uvicorn's HTTP parser (httptools falls back to h11 if absent)"
    )
    kafka: KafkaSecurity = Field(default_factory=KafkaSecurity)
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="none",
        description="producer compression; none and gzip are read by every Kafka client (kafkajs "
        "needs a codec package for snappy, lz4 and zstd)",
    )
    redact_keys: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REDACT_KEYS),
        description="data keys whose values are replaced by *** at ingest (last word of the key; [] = off)",
    )
    redact_by_type: dict[str, list[str]] = Field(
        default_factory=dict, description="event type -> its own redacted key names ([] = no redaction)"
    )
    kafka_message_max_bytes: int = Field(
        default=1_000_000, ge=1000, description="largest record Whale produces (librdkafka message.max.bytes)"
    )
    rules_dir: Path | None = Field(
        default=None,
        # one directory for the rule engine, the to-do stage and `whale rules`; the stages' old
        # names stay accepted so existing deployments keep working
        validation_alias=AliasChoices(*RULES_DIR_NAMES),
        description="directory of rule YAML files (optional; rules also come from whale.rules)",
    )

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka base configuration: bootstrap servers plus security options."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka.librdkafka_config()}
