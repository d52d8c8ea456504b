"""Faust's connection to Kafka: the same bootstrap servers and TLS/SASL options as every other client.

The confluent-kafka clients take :meth:`whale.settings.WhaleSettings.kafka_config`; Faust (aiokafka)
takes broker URLs and a credentials object, built here from the same settings.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from whale.errors import ConfigError
from whale.settings import KafkaSecurity, WhaleSettings


def broker_urls(settings: WhaleSettings) -> list[str]:
    return [f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",") if host.strip()]


def broker_credentials(security: KafkaSecurity) -> Any:
    """None for PLAINTEXT, else Faust SSL or SASL credentials (CA from ``ssl_ca_location``)."""
    protocol = security.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=security.ssl_ca_location)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if not security.sasl_username or security.sasl_password is None:
        raise ConfigError(
            f"WHALE_KAFKA_SECURITY_PROTOCOL={protocol} needs WHALE_KAFKA_SASL_USERNAME and _SASL_PASSWORD",
            field="kafka.sasl_username",
        )
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password,
        ssl_context=context,
        mechanism=security.sasl_mechanism or "PLAIN",
    )
