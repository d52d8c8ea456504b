"""Fan-out over an inventory selector on the real Kafka and the real sshd: "restart the service on
every web node, two at a time, stop if two fail", with each host's result in the workflow's result."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from whale_executor.app import Executor
from whale_executor.settings import Settings

from tests.ports import free_port
from whale.infra.sshd import LocalSshd
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import Tap

from .conftest import request_event, send_request

pytestmark = pytest.mark.integration
WEB = ["web-1", "web-2", "web-3", "web-4", "web-5"]

RESTART = """
kind: ssh
name: test.restart-unit
params:
  type: object
  required: [host, root, unit]
  properties: {host: {type: string}, root: {type: string}, unit: {type: string}}
host: "{{ params.host }}"
argv: [sh, -c, 'd="$1/$2"; [ -e "$d/slow" ] && sleep 1; [ -e "$d/broken" ] && { echo "$3 will not start" >&2; exit 3; }; echo "$3" >> "$d/restarted"; echo "restarted $3"', sh, "{{ params.root }}", "{{ params.host }}", "{{ params.unit }}"]
timeout: 30
"""

WORKFLOW = """
kind: workflow
name: test.restart-web
params:
  type: object
  required: [root]
  properties: {root: {type: string}, env: {type: string}}
tasks:
  restart:
    action: test.restart-unit
    with_hosts: {group: web, labels: {env: "{{ input.env }}"}}
    input: {host: "{{ item }}", root: "{{ input.root }}", unit: nginx}
    concurrency: 2
    stop_after_failures: 2
output:
  restarted: "{{ tasks.restart.output.succeeded }}"
"""


@pytest.fixture
async def ssh_executor(
    stack: WhaleSettings, sshd: LocalSshd, pool: str, tmp_path: Path
) -> AsyncIterator[Executor]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "restart.yaml").write_text(textwrap.dedent(RESTART))
    (catalog / "wf.yaml").write_text(textwrap.dedent(WORKFLOW))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line)

    def node(group: str, env: str) -> dict[str, object]:
        return {"address": "127.0.0.1", "port": sshd.port, "groups": [group], "labels": {"env": env}}

    inventory = {
        "defaults": {"user": sshd.user, "key": f"file:{sshd.client_key}"},
        "hosts": {
            **{n: node("web", "prod") for n in WEB},
            "web-staging": node("web", "staging"),
            "db-1": node("db", "prod"),
        },
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    settings = Settings(
        whale=stack,
        pool=pool,
        catalog_dirs=[catalog],
        inventory=[tmp_path / "inventory.yaml"],
        inventory_topic="",
        ssh_known_hosts=known_hosts,
        session_timeout=6.0,
        port=free_port(),
    )
    ex = Executor(settings)
    await ex.start()
    yield ex
    await ex.stop()


async def test_restart_on_every_web_node_two_at_a_time_stops_after_two_failures(
    ssh_executor: Executor, producer: EventProducer, results: Tap, pool: str, tmp_path: Path
) -> None:
    root = tmp_path / "hosts"
    for name in [*WEB, "web-staging", "db-1"]:
        (root / name).mkdir(parents=True)
    (root / "web-1" / "slow").touch()  # still running while the next two fail
    (root / "web-2" / "broken").touch()
    (root / "web-3" / "broken").touch()
    request = request_event(pool, "test.restart-web", {"root": str(root), "env": "prod"}, kind="workflow")
    await send_request(producer, request)
    (end,) = await results.expect("whale.workflow.failed", request_id=request.id)
    (failure,) = end.data["error"]["failures"]
    assert failure["error"]["message"] == (
        "task 'restart': 2 of 5 items failed (stop_after_failures 2); 2 not started"
    )
    items = failure["output"]["items"]
    assert [(i["item"], i["status"]) for i in items] == [
        ("web-1", "succeeded"),
        ("web-2", "failed"),
        ("web-3", "failed"),
        ("web-4", "skipped"),
        ("web-5", "skipped"),
    ]
    assert items[0]["output"]["stdout"] == "restarted nginx\n" and items[0]["output"]["host"] == "web-1"
    assert items[1]["output"]["exit_code"] == 3 and items[1]["output"]["stderr"] == "nginx will not start\n"
    assert items[1]["error"]["message"] == "web-2: sh exited with code 3"
    restarted = sorted(p.parent.name for p in root.glob("*/restarted"))
    assert restarted == ["web-1"]  # not the staging node, not the db node, not the skipped ones
    (started,) = results.of("whale.workflow.task.started", request_id=request.id)
    assert started.data["output"] == {"action": "test.restart-unit", "items": 5}
    json.dumps(end.data)  # the whole result is one JSON event
