"""Faust gets the same Kafka address and TLS/SASL options as the confluent-kafka clients."""

from __future__ import annotations

import faust
import pytest
from whale_rule_engine.broker import broker_credentials, broker_urls

from whale.errors import ConfigError
from whale.settings import KafkaSecurity, WhaleSettings


def test_every_bootstrap_server_becomes_a_broker_url() -> None:
    settings = WhaleSettings(kafka_bootstrap="k1:9092, k2:9093")
    assert broker_urls(settings) == ["kafka://k1:9092", "kafka://k2:9093"]


def test_plaintext_has_no_credentials_and_tls_or_sasl_do() -> None:
    assert broker_credentials(KafkaSecurity(security_protocol="PLAINTEXT")) is None
    assert isinstance(broker_credentials(KafkaSecurity(security_protocol="SSL")), faust.SSLCredentials)
    sasl = broker_credentials(
        KafkaSecurity(
            security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u", sasl_password="p"
        )
    )
    assert isinstance(sasl, faust.SASLCredentials)
    assert sasl.username == "u" and sasl.ssl_context is not None


def test_sasl_without_a_username_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ConfigError, match="WHALE_KAFKA_SASL_USERNAME"):
        broker_credentials(KafkaSecurity(security_protocol="SASL_PLAINTEXT"))
