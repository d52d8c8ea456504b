"""The live inventory: hosts of files and of an HTTP source (a CMDB endpoint) published on a compacted
topic reach a running executor's SSH actions without a restart; real Kafka, real HTTP, real sshd."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient
from whale_executor.actions.base import ActionContext
from whale_executor.actions.ssh import SshAction
from whale_executor.app import ssh_runtime
from whale_executor.errors import ActionFailed
from whale_executor.settings import Settings

from whale.admin import ensure_topics
from whale.cli import main
from whale.compacted import CompactedView
from whale.infra.sshd import LocalSshd
from whale.inventory_http import SKIPPED, load_sources
from whale.inventory_live import LiveInventory, Publisher, topic_spec
from whale.producer import EventProducer
from whale.settings import WhaleSettings

pytestmark = pytest.mark.integration
CTX = ActionContext(request_id="r1", idempotency_key="k1", pool="test")


class Cmdb:
    """A CMDB endpoint answering ``records`` (or ``status`` when set) at /hosts."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.status = 200
        cmdb = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"data": cmdb.records}).encode()
                self.send_response(cmdb.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hosts"


@pytest.fixture
def cmdb() -> Iterator[Cmdb]:
    server = Cmdb()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def topic(stack: WhaleSettings, unique: str) -> Iterator[str]:
    name = f"whale.inventory.t-{unique}"
    ensure_topics(stack, [topic_spec(name)])
    yield name
    AdminClient(stack.kafka_config()).delete_topics([name])


def record(sshd: LocalSshd, name: str, role: str = "web", **extra: Any) -> dict[str, Any]:
    return {"hostname": name, "ip": "127.0.0.1", "port": sshd.port, "role": role, **extra}


async def test_hosts_from_files_and_a_cmdb_reach_a_running_executor_live(
    stack: WhaleSettings,
    sshd: LocalSshd,
    cmdb: Cmdb,
    topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = tmp_path / "inventory.yaml"
    files.write_text(
        yaml.safe_dump(
            {
                "defaults": {"user": sshd.user, "key": f"file:{sshd.client_key}"},
                "hosts": {"file-host": {"address": "127.0.0.1", "port": sshd.port, "groups": ["db"]}},
            }
        )
    )
    sources = tmp_path / "sources.yaml"
    source_doc = {
        "name": "cmdb",
        "url": cmdb.url,
        "items": "$.data",
        "map": {"name": "$.hostname", "address": "$.ip", "port": "$.port", "labels": {"role": "$.role"}},
        "defaults": {"user": sshd.user, "key": f"file:{sshd.client_key}", "groups": ["web"]},
    }
    sources.write_text(yaml.safe_dump({"sources": [source_doc]}))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line)
    cmdb.records = [record(sshd, "web-1")]

    producer = EventProducer(stack)
    view = CompactedView(stack, topic)
    await view.start()
    publisher = Publisher(producer, view, files=[files], sources=load_sources(sources), topic=topic)
    first = await publisher.publish_once()
    assert (first.written, first.deleted, first.hosts) == (["file-host", "web-1"], [], 2)

    settings = Settings(whale=stack, inventory_topic=topic, ssh_known_hosts=known_hosts)
    runtime = ssh_runtime(settings)  # as the executor builds it
    assert isinstance(runtime.inventory, LiveInventory)
    await runtime.inventory.start()
    action = SshAction(
        {
            "kind": "ssh",
            "name": "t.hostname",
            "host": "{{ params.host }}",
            "argv": ["echo", "on {{ params.host }}"],
        },
        source=str(tmp_path / "a.yaml"),
    )
    action.bind(runtime)
    try:
        assert (await action.run({"host": "web-1"}, CTX))["stdout"] == "on web-1\n"
        assert (await action.run({"host": "file-host"}, CTX))["stdout"] == "on file-host\n"

        # The CMDB changes: web-1 goes, web-2 comes (role db), one record is bad: applied live.
        before = SKIPPED.labels(origin="http:cmdb")._value.get()
        cmdb.records = [record(sshd, "web-2", role="db"), record(sshd, "bad", port="twenty-two")]
        second = await publisher.publish_once()
        assert (second.written, second.deleted) == (["web-2"], ["web-1"])
        assert SKIPPED.labels(origin="http:cmdb")._value.get() - before == 1
        await asyncio.to_thread(view.wait_for, lambda items: "web-2" in items and "web-1" not in items, 30)
        await _until(lambda: "web-2" in runtime.inventory.hosts and "web-1" not in runtime.inventory.hosts)
        assert runtime.inventory.get("web-2").labels == {"role": "db"}
        assert (await action.run({"host": "web-2"}, CTX))["stdout"] == "on web-2\n"
        with pytest.raises(ActionFailed, match="'web-1' is not in the inventory") as gone:
            await action.run({"host": "web-1"}, CTX)
        assert gone.value.retryable is False

        # The CMDB is down: its hosts stay, nothing is tombstoned.
        cmdb.status = 503
        third = await publisher.publish_once()
        assert (third.written, third.deleted, third.failed_sources) == ([], [], ["cmdb"])

        # `whale hosts list` shows the live view (with where each host comes from).
        monkeypatch.setenv("WHALE_EXECUTOR_INVENTORY_TOPIC", topic)
        listed = await asyncio.to_thread(_hosts_list)
        assert {h["name"]: h["origin"] for h in listed} == {"file-host": str(files), "web-2": "http:cmdb"}
        assert all("key" not in h for h in listed)
    finally:
        await runtime.inventory.stop()
        await runtime.connections.close()
        await view.stop()
        await asyncio.to_thread(producer.close)


def _hosts_list() -> list[dict[str, Any]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["hosts", "list", "--json"]) == 0
    listed: list[dict[str, Any]] = json.loads(out.getvalue())
    return listed


async def _until(check: Any, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the timeout")


def test_the_publish_command_writes_the_files_hosts_and_exits_1_when_a_source_fails(
    stack: WhaleSettings, topic: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    examples = Path(__file__).parents[3] / "examples" / "inventory"
    sources = tmp_path / "sources.yaml"
    down = {"name": "down", "url": "http://127.0.0.1:9/hosts", "timeout": 2, "map": {"name": "$.n"}}
    sources.write_text(yaml.safe_dump({"sources": [down]}))
    env = {
        **os.environ,
        "WHALE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "WHALE_EXECUTOR_INVENTORY_TOPIC": topic,
    }
    base = [sys.executable, "-m", "whale", "hosts"]
    done = subprocess.run(
        [*base, "publish", "--inventory", str(examples), "--source", str(sources), "--topic", topic],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == "3 hosts: 3 written, 0 deleted; sources failed: down"
    listed = subprocess.run(
        [*base, "list", "--group", "web"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["vm-web-01", "vm-web-02"]
    assert "file:" not in listed.stdout  # never the credential references
