"""One Kafka broker in KRaft mode (combined broker and controller), fetched from Maven Central.

Layout: the class path in ``<cache_dir>/kafka-<version>/libs``; configuration, log and data in
``<data_dir>/kafka``. Storage is formatted once (``meta.properties`` marks it).
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from whale.errors import InfraError
from whale.infra import maven, process
from whale.infra.java import Java
from whale.infra.settings import InfraSettings

NAME = "kafka"
LOG4J2 = """\
# Written by whale infra: warnings and errors, plus the broker's life cycle, to stdout (kafka.log).
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.controller.name = kafka.server.ControllerServer
logger.controller.level = INFO
logger.signal.name = org.apache.kafka.common.utils.LoggingSignalHandler
logger.signal.level = INFO
"""


def home(cache_dir: Path, version: str) -> Path:
    """Where the class path of Kafka ``version`` is cached."""
    return cache_dir / f"kafka-{version}"


def install(cache_dir: Path, version: str, java: Java) -> Path:
    """The ``libs`` directory of Kafka ``version``, fetched with Maven on first use."""

    def build(tmp: Path) -> None:
        maven.copy_dependencies(
            maven.kafka_pom(version), tmp / "libs", java=java, what=f"Apache Kafka {version}"
        )

    return maven.install_once(home(cache_dir, version), build) / "libs"


def server_properties(infra: InfraSettings, log_dirs: Path) -> str:
    """``server.properties`` of a single combined broker+controller with replication factors of 1."""
    host, port, cport = infra.host, infra.kafka_port, infra.kafka_controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{cport}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
    }
    lines = ["# Written by whale infra at every start; edit InfraSettings (WHALE_INFRA_*) instead."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def cluster_id() -> str:
    """A fresh KRaft cluster id, like ``kafka-storage.sh random-uuid`` (no JVM start needed)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def java_env(java: Java) -> dict[str, str]:
    """The environment of Kafka's JVMs: ours, with ``JAVA_HOME`` pointing at the chosen runtime."""
    return {**os.environ, "JAVA_HOME": str(java.home)}


def prepare(data: Path, infra: InfraSettings, libs: Path, java: Java) -> Path:
    """Write the configuration into ``data`` and format the storage if needed; returns the config."""
    log_dirs = data / "data"
    log_dirs.mkdir(parents=True, exist_ok=True)
    config = data / "server.properties"
    config.write_text(server_properties(infra, log_dirs), encoding="utf-8")
    (data / "log4j2.properties").write_text(LOG4J2, encoding="utf-8")
    if (log_dirs / "meta.properties").exists():
        return config
    cmd = [
        str(java.executable),
        f"-Dlog4j2.configurationFile={data / 'log4j2.properties'}",
        "-cp",
        str(libs / "*"),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id(),
        "-c",
        str(config),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=java_env(java), timeout=120, check=False)
    if proc.returncode != 0:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise InfraError(f"formatting Kafka storage in {log_dirs} failed: {last[0]}")
    return config


def start(
    data: Path, infra: InfraSettings, libs: Path, java: Java
) -> tuple[subprocess.Popen[bytes], process.ProcessRecord]:
    """Start the broker detached from this process; it is not ready yet (see :func:`wait_ready`)."""
    config = prepare(data, infra, libs, java)
    cmd = [
        str(java.executable),
        f"-Xms{infra.kafka_heap}",
        f"-Xmx{infra.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={data / 'log4j2.properties'}",
        "-cp",
        str(libs / "*"),
        "kafka.Kafka",
        str(config),
    ]
    return process.spawn(
        cmd,
        log=data / "kafka.log",
        env=java_env(java),
        cwd=data,
        address=infra.kafka_bootstrap(),
        version=infra.kafka_version,
    )


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("whale.infra.librdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def answers(config: Mapping[str, object], timeout: float = 5.0) -> str | None:
    """None if the cluster at ``config`` answers a metadata request with brokers, else the reason."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {**config, "logger": _quiet_logger()}
    admin = AdminClient(conf)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        return str(exc.args[0] if exc.args else exc)
    return None if metadata.brokers else "no brokers in the metadata"


def wait_ready(proc: subprocess.Popen[bytes], record: process.ProcessRecord, timeout: float) -> None:
    """Block until the broker answers metadata requests; InfraError with its log if it exits or hangs."""
    deadline = time.monotonic() + timeout
    host, _, port = record.address.rpartition(":")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(
                f"Kafka exited with code {proc.returncode} during start-up; last lines of {record.log}:\n"
                + process.tail(Path(record.log))
            )
        if (
            process.port_in_use(host, int(port))
            and answers({"bootstrap.servers": record.address}, 2.0) is None
        ):
            return
        time.sleep(0.3)
    raise InfraError(
        f"Kafka did not answer on {record.address} within {timeout:.0f}s; last lines of {record.log}:\n"
        + process.tail(Path(record.log))
    )
