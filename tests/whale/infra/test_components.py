"""Configuration that the Kafka broker and the Elasticsearch node are started with."""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from whale.infra import elasticsearch, kafka
from whale.infra.settings import InfraSettings


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_kafka_is_one_combined_broker_and_controller_with_replication_factor_1(tmp_path: Path) -> None:
    props = _props(
        kafka.server_properties(InfraSettings(kafka_port=19092, kafka_controller_port=19093), tmp_path)
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path)
    assert props["group.initial.rebalance.delay.ms"] == "0"
    factors = {k: v for k, v in props.items() if k.endswith("replication.factor") or k.endswith("min.isr")}
    assert factors and set(factors.values()) == {"1"}


def test_cluster_ids_look_like_kafka_random_uuid() -> None:
    ids = {kafka.cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)


def test_elasticsearch_is_a_single_insecure_loopback_node_with_relaxed_disk_watermarks(
    tmp_path: Path,
) -> None:
    yml = elasticsearch.elasticsearch_yml(InfraSettings(es_port=19200, es_transport_port=19300), tmp_path)
    lines = dict(line.split(": ", 1) for line in yml.splitlines() if not line.startswith("#"))
    assert lines["discovery.type"] == '"single-node"'
    assert lines["network.host"] == '"127.0.0.1"'
    assert (lines["http.port"], lines["transport.port"]) == ("19200", "19300")
    assert lines["xpack.security.enabled"] == "false"
    assert lines["path.data"] == f'"{tmp_path / "data"}"'
    assert lines["path.logs"] == f'"{tmp_path / "logs"}"'
    assert lines["cluster.routing.allocation.disk.watermark.flood_stage"] == '"256mb"'


def test_extract_keeps_executable_bits_from_the_zip(tmp_path: Path) -> None:
    archive = tmp_path / "dist.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        script = zipfile.ZipInfo("es/bin/elasticsearch")
        script.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(script, "#!/bin/sh\n")
        zf.writestr("es/config/elasticsearch.yml", "")
    elasticsearch.extract(archive, tmp_path / "out")
    assert os.access(tmp_path / "out/es/bin/elasticsearch", os.X_OK)
    assert (tmp_path / "out/es/config/elasticsearch.yml").is_file()


def test_a_directory_without_search_permission_blocks_the_user_it_applies_to(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "inner").mkdir(parents=True)
    me = os.getuid()
    try:
        private.chmod(0o677)  # the owner may not enter; the mode bits, not root's privileges, decide
        assert elasticsearch.unsearchable_parent(private / "inner" / "x", me, set()) == private
        private.chmod(0o700)
        assert elasticsearch.unsearchable_parent(private / "inner" / "x", me, set()) is None
    finally:
        private.chmod(0o700)


def test_as_root_the_node_is_started_through_setpriv_as_the_unprivileged_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    who = elasticsearch.RunAs("whale", 999, 995)
    command = elasticsearch.launcher(Path("/es"), who)
    assert command == [
        "/usr/bin/setpriv",
        "--reuid=999",
        "--regid=995",
        "--init-groups",
        "--",
        "/es/bin/elasticsearch",
    ]
    assert elasticsearch.launcher(Path("/es"), None) == ["/es/bin/elasticsearch"]


def test_as_a_normal_user_the_node_lives_in_the_cache_and_data_dirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    from whale.infra.java import Java

    layout = elasticsearch.locate(
        tmp_path / "cache", tmp_path / "data", InfraSettings(), Java(Path("/j"), Path("/j/bin/java"), 17)
    )
    assert layout.who is None
    assert layout.dist_root == tmp_path / "cache" / f"elasticsearch-{InfraSettings().es_version}"
    assert layout.node_dir == tmp_path / "data" / "elasticsearch"
