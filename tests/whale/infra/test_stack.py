"""up/down/status decisions with fake components: idempotence, ports, user clusters, rollback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from whale.errors import InfraError
from whale.infra import elasticsearch, kafka, process, stack
from whale.infra.settings import InfraSettings
from whale.settings import WhaleSettings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def infra(tmp_path: Path) -> InfraSettings:
    return InfraSettings(
        data_dir=tmp_path / "data",
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        es_port=_free_port(),
        es_transport_port=_free_port(),
        stop_timeout=5,
    )


@pytest.fixture
def settings(tmp_path: Path) -> WhaleSettings:
    return WhaleSettings(cache_dir=tmp_path / "cache")


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[list[process.ProcessRecord]]:
    """Real processes standing in for Kafka and Elasticsearch (killed at the end if still there)."""
    started: list[process.ProcessRecord] = []
    yield started
    for record in started:
        process.stop_group(record, grace=1)


@pytest.fixture
def fake_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sleepers: list[process.ProcessRecord]
) -> list[list[str]]:
    """Replace fetching and starting by spawning `sleep`-like processes; records which names were started."""
    calls: list[list[str]] = []

    def start(
        names: list[str],
        settings: WhaleSettings,
        infra: InfraSettings,
        data_dir: Path,
        state: process.StateFile,
        say: stack.Progress,
    ) -> dict[str, process.ProcessRecord]:
        calls.append(list(names))
        launched = {}
        for name in names:
            _, record = process.spawn(
                [sys.executable, "-c", "import time; time.sleep(600)"],
                log=tmp_path / f"{name}.log",
                env=os.environ,
                cwd=tmp_path,
                address=stack.local_address(name, infra),
                version="test",
            )
            sleepers.append(record)
            state.put(name, record)
            launched[name] = record
        return launched

    monkeypatch.setattr(stack, "_start", start)
    return calls


def test_up_starts_both_components_and_says_so(
    settings: WhaleSettings, infra: InfraSettings, fake_start: list[list[str]]
) -> None:
    result = stack.up(settings, infra)
    assert fake_start == [["kafka", "elasticsearch"]]
    assert result.started == ("kafka", "elasticsearch")
    assert result["kafka"].address == infra.kafka_bootstrap()
    assert result.settings.kafka_bootstrap == infra.kafka_bootstrap()
    assert result.settings.es_url == infra.es_url()


def test_second_up_starts_nothing_and_reports_running(
    settings: WhaleSettings, infra: InfraSettings, fake_start: list[list[str]]
) -> None:
    first = stack.up(settings, infra)
    second = stack.up(settings, infra)
    assert len(fake_start) == 1
    assert second.started == ()
    assert [c.state for c in second.components] == [stack.RUNNING, stack.RUNNING]
    assert [c.pid for c in second.components] == [c.pid for c in first.components]


def test_a_port_held_by_a_stranger_stops_up_with_the_port_and_its_owner(
    settings: WhaleSettings, tmp_path: Path, fake_start: list[list[str]]
) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        infra = InfraSettings(data_dir=tmp_path / "data", kafka_port=port, es_port=_free_port())
        with pytest.raises(InfraError) as caught:
            stack.up(settings, infra)
    message = str(caught.value)
    assert f"port {port} is already in use" in message
    assert "not by this stack's Kafka" in message
    assert "WHALE_KAFKA_BOOTSTRAP" in message
    if Path("/proc/net/tcp").exists():
        assert f"pid {os.getpid()}" in message
    assert fake_start == []


def test_a_user_cluster_is_only_checked_never_started_or_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, infra: InfraSettings, fake_start: list[list[str]]
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(stack, "check_external", lambda s, name: checked.append(name))
    settings = WhaleSettings(cache_dir=tmp_path, kafka_bootstrap="kafka.example:9092")
    result = stack.up(settings, infra)
    assert checked == ["kafka"]
    assert fake_start == [["elasticsearch"]]
    assert result["kafka"].state == stack.EXTERNAL
    assert result.settings.kafka_bootstrap == "kafka.example:9092"
    assert stack.down(settings, infra)["kafka"].state == stack.EXTERNAL


def test_an_unreachable_user_cluster_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, infra: InfraSettings, fake_start: list[list[str]]
) -> None:
    monkeypatch.setattr(stack, "check_external", lambda s, name: "connection refused")
    settings = WhaleSettings(cache_dir=tmp_path, es_url="http://es.example:9200")
    with pytest.raises(
        InfraError, match=r"Elasticsearch at http://es.example:9200 \(from WHALE_ES_URL\) is not reachable"
    ):
        stack.up(settings, infra)


def test_down_stops_what_up_started_and_status_then_reports_not_running(
    settings: WhaleSettings, infra: InfraSettings, fake_start: list[list[str]]
) -> None:
    started = stack.up(settings, infra)
    stopped = stack.down(settings, infra)
    assert [c.state for c in stopped.components] == [stack.STOPPED, stack.STOPPED]
    for component in started.components:
        assert component.pid is not None
        assert process.start_ticks(component.pid) is None
    after = stack.status(settings, infra)
    assert [c.state for c in after.components] == [stack.NOT_RUNNING, stack.NOT_RUNNING]
    assert not after.usable


def test_down_of_one_component_leaves_the_other_running(
    settings: WhaleSettings, infra: InfraSettings, fake_start: list[list[str]]
) -> None:
    stack.up(settings, infra)
    result = stack.down(settings, infra, components=["elasticsearch"])
    assert result["elasticsearch"].state == stack.STOPPED
    assert result["kafka"].state == stack.RUNNING
    assert stack.status(settings, infra)["kafka"].state == stack.RUNNING


def test_down_never_signals_a_process_it_did_not_start(settings: WhaleSettings, infra: InfraSettings) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        ticks = process.start_ticks(stranger.pid)
        assert ticks is not None
        reused = process.ProcessRecord(stranger.pid, stranger.pid, ticks + 1, "x", "1", "/dev/null", 0.0)
        process.StateFile(infra.resolved_data_dir(settings)).put("kafka", reused)
        result = stack.down(settings, infra)
        assert result["kafka"].state == stack.NOT_RUNNING
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_down_rejects_unknown_component_names(settings: WhaleSettings, infra: InfraSettings) -> None:
    with pytest.raises(InfraError, match="unknown component"):
        stack.down(settings, infra, components=["zookeeper"])


def test_a_failed_start_stops_what_this_call_already_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: WhaleSettings, infra: InfraSettings
) -> None:
    spawned: list[process.ProcessRecord] = []

    def spawn(name: str, *args: object) -> tuple[subprocess.Popen[bytes], process.ProcessRecord]:
        proc, record = process.spawn(
            [sys.executable, "-c", "import time; time.sleep(600)"],
            log=tmp_path / f"{name}.log",
            env=os.environ,
            cwd=tmp_path,
            address=stack.local_address(name, infra),
            version="test",
        )
        spawned.append(record)
        return proc, record

    def never_ready(proc: object, record: process.ProcessRecord, timeout: float) -> None:
        raise InfraError("Kafka exited with code 1 during start-up")

    monkeypatch.setattr(stack, "find_java", lambda: None)
    monkeypatch.setattr(stack, "_spawn", spawn)
    monkeypatch.setattr(kafka, "wait_ready", never_ready)
    monkeypatch.setattr(elasticsearch, "wait_ready", lambda *a: None)
    with pytest.raises(InfraError, match="Kafka exited"):
        stack.up(settings, infra)
    assert len(spawned) == 2
    assert not any(process.is_alive(r) for r in spawned)
    assert process.StateFile(infra.resolved_data_dir(settings)).read() == {}


def test_describe_prints_one_line_per_component_with_address_and_state(
    settings: WhaleSettings, infra: InfraSettings
) -> None:
    text = stack.status(settings, infra).describe()
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:3] == ["kafka", infra.kafka_bootstrap(), "not"]
    assert lines[1].split()[:2] == ["elasticsearch", infra.es_url()]
    assert stack.status(settings, infra).to_dict()["kafka"]["state"] == "not running"
