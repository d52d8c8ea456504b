"""Settings of the local Kafka/Elasticsearch stack (env prefix ``WHALE_INFRA_``).

The versions live here as the single source of truth: ``KAFKA_VERSION`` is the newest Kafka that was
verified with aiokafka 0.14 + faust-streaming 0.15 (agents, tables, transactions) and confluent-kafka
2.16; ``ELASTICSEARCH_VERSION`` matches the ``elasticsearch`` 8.19 Python client.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings

KAFKA_VERSION = "4.3.0"
ELASTICSEARCH_VERSION = "8.19.7"


class InfraSettings(BaseSettings):
    """Ports, versions, heap sizes and directories of the stack that ``whale infra up`` runs."""

    model_config = SettingsConfigDict(env_prefix="WHALE_INFRA_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address every component listens on")
    kafka_version: str = KAFKA_VERSION
    kafka_port: int = Field(default=9092, ge=1, le=65535, description="Kafka client listener")
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535, description="KRaft controller")
    kafka_heap: str = Field(default="512m", pattern=r"^\d+[kmgKMG]$")
    es_version: str = ELASTICSEARCH_VERSION
    es_port: int = Field(default=9200, ge=1, le=65535, description="Elasticsearch HTTP")
    es_transport_port: int = Field(default=9300, ge=1, le=65535, description="Elasticsearch transport")
    es_heap: str = Field(default="512m", pattern=r"^\d+[kmgKMG]$")
    es_user: str = Field(default="whale", description="unprivileged user that runs Elasticsearch as root")
    es_root_dir: Path = Field(
        default=Path("/var/lib/whale"),
        description="as root: home of Elasticsearch when its user cannot enter the cache or data dir",
    )
    data_dir: Path | None = Field(default=None, description="state, logs and data; default <cache_dir>/data")
    start_timeout: float = Field(default=300.0, gt=0, description="seconds a component may take to start")
    stop_timeout: float = Field(default=30.0, gt=0, description="seconds between SIGTERM and SIGKILL")

    def resolved_data_dir(self, settings: WhaleSettings) -> Path:
        """The data directory: ``data_dir`` if set, else ``<cache_dir>/data``, always absolute."""
        return (self.data_dir or settings.cache_dir / "data").expanduser().absolute()

    def kafka_bootstrap(self) -> str:
        """The bootstrap address of the local broker."""
        return f"{self.host}:{self.kafka_port}"

    def es_url(self) -> str:
        """The HTTP URL of the local Elasticsearch node."""
        return f"http://{self.host}:{self.es_port}"
