"""InfraSettings defaults and the Java 17+ check (with fake `java` output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from whale.errors import InfraError
from whale.infra import java
from whale.infra.settings import ELASTICSEARCH_VERSION, KAFKA_VERSION, InfraSettings
from whale.settings import WhaleSettings

JAVA_17_OUTPUT = """Property settings:
    java.home = /usr/lib/jvm/java-17-openjdk-amd64
    java.version = 17.0.15
    java.vm.name = OpenJDK 64-Bit Server VM
openjdk version "17.0.15" 2025-04-15
"""
JAVA_11_OUTPUT = JAVA_17_OUTPUT.replace("17.0.15", "11.0.22").replace("java-17", "java-11")


def test_defaults_are_the_local_ports_and_pinned_versions() -> None:
    infra = InfraSettings()
    assert (infra.kafka_port, infra.kafka_controller_port, infra.es_port) == (9092, 9093, 9200)
    assert (infra.kafka_version, infra.es_version) == (KAFKA_VERSION, ELASTICSEARCH_VERSION)
    assert infra.kafka_bootstrap() == "127.0.0.1:9092"
    assert infra.es_url() == "http://127.0.0.1:9200"


def test_settings_are_read_from_whale_infra_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_INFRA_KAFKA_PORT", "19092")
    monkeypatch.setenv("WHALE_INFRA_ES_HEAP", "1g")
    infra = InfraSettings()
    assert infra.kafka_port == 19092
    assert infra.es_heap == "1g"


def test_data_dir_defaults_to_data_under_the_cache_dir(tmp_path: Path) -> None:
    settings = WhaleSettings(cache_dir=tmp_path)
    assert InfraSettings().resolved_data_dir(settings) == tmp_path / "data"
    assert (
        InfraSettings(data_dir=tmp_path / "elsewhere").resolved_data_dir(settings) == tmp_path / "elsewhere"
    )


@pytest.mark.parametrize(
    ("version", "major"), [("1.8.0_392", 8), ("11.0.22", 11), ("17.0.15", 17), ("21", 21), ("25-ea", 25)]
)
def test_parse_major_reads_old_and_new_version_schemes(version: str, major: int) -> None:
    assert java.parse_major(version) == major


def test_java_17_is_accepted_with_its_home_from_the_properties() -> None:
    found = java.check(Path("/usr/bin/java"), JAVA_17_OUTPUT)
    assert found.major == 17
    assert found.home == Path("/usr/lib/jvm/java-17-openjdk-amd64")
    assert found.executable == found.home / "bin" / "java"


def test_java_too_old_is_a_one_line_error_naming_found_and_required_versions() -> None:
    with pytest.raises(InfraError) as caught:
        java.check(Path("/usr/bin/java"), JAVA_11_OUTPUT)
    message = str(caught.value)
    assert "Java 17+ is required" in message
    assert "Java 11" in message
    assert "JAVA_HOME" in message
    assert "\n" not in message


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(java, "candidate", lambda: None)
    with pytest.raises(InfraError, match=r"no `java` was found"):
        java.find_java()


def test_java_home_wins_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "java"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert java.candidate() == binary


def test_output_without_a_version_is_rejected() -> None:
    with pytest.raises(InfraError, match="did not report a version"):
        java.check(Path("/usr/bin/java"), "Error: could not create the Java Virtual Machine.")
