"""``kill -9`` of an executor while a non-idempotent SSH action runs on a (real sshd) host: after the
restart the request ends ``whale.action.abandoned`` and the command is not run a second time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from whale.infra.sshd import LocalSshd
from whale.producer import EventProducer
from whale.testing import Tap

from .conftest import Subprocess, request_event, send_request

pytestmark = pytest.mark.integration
SSH_MARK = """\
kind: ssh
name: test.ssh-mark-once
idempotent: false
params:
  type: object
  properties: {host: {type: string}, file: {type: string}, sleep: {type: number}}
  required: [host, file, sleep]
host: "{{ params.host }}"
argv: [sh, -c, 'echo $$ > "$1.pid"; echo x >> "$1"; exec sleep "$2"', sh, "{{ params.file }}", "{{ params.sleep }}"]
timeout: 120
"""


async def test_kill9_mid_ssh_action_abandons_it_without_running_it_again(
    spawn: Subprocess,
    producer: EventProducer,
    results: Tap,
    pool: str,
    tmp_path: Path,
    sshd: LocalSshd,
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "ssh-mark.yaml").write_text(SSH_MARK)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"hosts:\n  vm-crash: {{address: 127.0.0.1, port: {sshd.port}, user: {sshd.user},"
        f" key: 'file:{sshd.client_key}'}}\n"
    )
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line)
    spawn.env.update(
        {
            "WHALE_EXECUTOR_CATALOG_DIRS": json.dumps([str(catalog)]),
            "WHALE_EXECUTOR_INVENTORY": json.dumps([str(inventory)]),
            "WHALE_EXECUTOR_SSH_KNOWN_HOSTS": str(known_hosts),
        }
    )
    marks = tmp_path / "marks.txt"
    spawn.launch()
    await spawn.ready()
    request = request_event(pool, "test.ssh-mark-once", {"host": "vm-crash", "file": str(marks), "sleep": 60})
    await send_request(producer, request)
    for _ in range(1200):  # the command is running on the host
        if marks.exists() and marks.read_text().split() == ["x"]:
            break
        await asyncio.sleep(0.05)
    assert marks.read_text().split() == ["x"]
    spawn.kill9()
    spawn.launch()
    await spawn.ready()
    try:
        (abandoned,) = await results.expect("whale.action.abandoned", request_id=request.id, timeout=90)
        assert "not idempotent" in abandoned.data["error"]["message"]
        assert abandoned.data["error"]["retryable"] is False
        assert marks.read_text().split() == ["x"]
    finally:
        with contextlib.suppress(OSError, ValueError):  # the first run's remote sleep, orphaned by the kill
            os.kill(int((tmp_path / "marks.txt.pid").read_text()), signal.SIGKILL)
