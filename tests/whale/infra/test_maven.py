"""The poms that fetch Kafka and Elasticsearch, and how Maven failures are explained."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from whale.errors import InfraError
from whale.infra import maven

NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _dependencies(pom: str) -> dict[str, ET.Element]:
    root = ET.fromstring(pom)
    return {
        f"{d.findtext('m:groupId', namespaces=NS)}:{d.findtext('m:artifactId', namespaces=NS)}": d
        for d in root.iterfind("m:dependencies/m:dependency", NS)
    }


def test_kafka_pom_pins_kafka_and_replaces_slf4j_1_7_with_2_and_log4j2() -> None:
    deps = _dependencies(maven.kafka_pom("4.3.0"))
    kafka = deps["org.apache.kafka:kafka_2.13"]
    assert kafka.findtext("m:version", namespaces=NS) == "4.3.0"
    excluded = {
        e.findtext("m:artifactId", namespaces=NS) for e in kafka.iterfind("m:exclusions/m:exclusion", NS)
    }
    assert "slf4j-api" in excluded
    assert deps["org.slf4j:slf4j-api"].findtext("m:version", namespaces=NS) == maven.SLF4J_VERSION
    assert "org.apache.logging.log4j:log4j-slf4j2-impl" in deps
    assert "org.apache.logging.log4j:log4j-core" in deps


def test_elasticsearch_pom_depends_on_the_integ_test_zip() -> None:
    deps = _dependencies(maven.elasticsearch_pom("8.19.7"))
    zip_dep = deps["org.elasticsearch.distribution.integ-test-zip:elasticsearch"]
    assert zip_dep.findtext("m:version", namespaces=NS) == "8.19.7"
    assert zip_dep.findtext("m:type", namespaces=NS) == "zip"


@pytest.mark.parametrize("pom", [maven.kafka_pom("4.3.0"), maven.elasticsearch_pom("8.19.7")])
def test_poms_name_no_repository_so_maven_central_is_used(pom: str) -> None:
    assert "<repositories>" not in pom
    assert "<pluginRepositories>" not in pom


CONNECTION_REFUSED = (
    "\x1b[0m\x1b[0m[ERROR] Plugin org.apache.maven.plugins:maven-dependency-plugin:3.8.1 or one of its "
    "dependencies could not be resolved: Failed to read artifact descriptor for "
    "org.apache.maven.plugins:maven-dependency-plugin:jar:3.8.1: Could not transfer artifact "
    "org.apache.maven.plugins:maven-dependency-plugin:pom:3.8.1 from/to dead (http://127.0.0.1:1/maven2): "
    "transfer failed for http://127.0.0.1:1/maven2/x.pom: Connect to 127.0.0.1:1 [/127.0.0.1] failed: "
    "Connection refused -> [Help 1]\n[ERROR] \n[ERROR] To see the full stack trace of the errors, re-run Maven\n"
)
NOT_FOUND = (
    "\x1b[0m\x1b[0m[ERROR] Failed to execute goal on project kafka-runtime: Could not resolve dependencies for "
    "project whale.infra:kafka-runtime:pom:9.9.9: org.apache.kafka:kafka_2.13:jar:9.9.9 was not found in "
    "the central repository -> [Help 1]\n[ERROR] \n"
)


def test_unreachable_maven_central_is_a_one_line_network_error_with_the_cause() -> None:
    message = maven.explain_failure("Apache Kafka 4.3.0", 1, CONNECTION_REFUSED)
    assert message.startswith("Maven could not download Apache Kafka 4.3.0 from Maven Central")
    assert message.endswith("(Connect to 127.0.0.1:1 [/127.0.0.1] failed: Connection refused)")
    assert "\n" not in message


def test_unknown_host_is_a_network_error() -> None:
    output = "[ERROR] Could not transfer artifact x from/to central: Unknown host example.invalid: Name or service not known"
    assert "Unknown host example.invalid" in maven.explain_failure("x", 1, output)


def test_unknown_version_is_explained_as_not_found() -> None:
    message = maven.explain_failure("Apache Kafka 9.9.9", 1, NOT_FOUND)
    assert message == (
        "Maven could not resolve Apache Kafka 9.9.9: "
        "org.apache.kafka:kafka_2.13:jar:9.9.9 was not found in the central repository"
    )


def test_other_failures_keep_the_first_error_line() -> None:
    message = maven.explain_failure("x", 3, "noise\n[ERROR] The goal you specified requires a project\n")
    assert message == "Maven failed to fetch x (exit code 3): The goal you specified requires a project"


def test_missing_maven_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(InfraError, match=r"Maven \(`mvn`\) is required"):
        maven.find_maven()


def test_install_once_builds_only_the_first_time(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "libs").mkdir()

    dest = tmp_path / "kafka-1.0"
    assert maven.install_once(dest, build) == dest
    assert maven.install_once(dest, build) == dest
    assert len(calls) == 1
    assert (dest / "libs").is_dir()


def test_install_once_leaves_nothing_behind_when_the_build_fails(tmp_path: Path) -> None:
    def build(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise InfraError("network down")

    with pytest.raises(InfraError):
        maven.install_once(tmp_path / "kafka-1.0", build)
    assert list(tmp_path.iterdir()) == []
