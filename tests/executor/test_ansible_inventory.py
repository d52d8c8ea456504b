"""Ansible actions on inventory hosts over SSH, against the real sshd: the hosts' address, port and
user, the private key from their secret reference in a 0600 file removed after the run, host keys
checked against the executor's known_hosts; the key never reaches the result or the logs."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from structlog.testing import capture_logs
from whale_executor.actions.ansible import AnsibleAction
from whale_executor.actions.base import ActionContext
from whale_executor.actions.ssh import SshRuntime
from whale_executor.errors import ActionFailed, CatalogError
from whale_executor.sshconn import Connections

from whale.infra.sshd import LocalSshd
from whale.inventory import Inventory

from .test_ssh import host

CTX = ActionContext(request_id="r1", idempotency_key="k1", pool="t")

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: restart
      ansible.builtin.command:
        argv: [sh, -c, 'stat -c %a "$1" > "$2/{{ inventory_hostname }}"; whoami >> "$2/{{ inventory_hostname }}"; echo "$1" >> "$2/{{ inventory_hostname }}"',
               sh, "{{ ansible_ssh_private_key_file }}", "{{ marks }}"]
    - name: refuse
      ansible.builtin.fail: {msg: "{{ inventory_hostname }} is broken"}
      when: inventory_hostname in broken
"""


@pytest.fixture
async def runtime(sshd: LocalSshd, tmp_path: Path) -> AsyncIterator[SshRuntime]:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line)
    hosts = [host(sshd, "web-1"), host(sshd, "web-2"), host(sshd, "db-1", groups=("db",))]
    rt = SshRuntime(inventory=Inventory(hosts), connections=Connections(known_hosts=known))
    yield rt
    await rt.connections.close()


def action(tmp_path: Path, runtime: SshRuntime | None, **extra: Any) -> AnsibleAction:
    (tmp_path / "playbooks").mkdir(exist_ok=True)
    (tmp_path / "playbooks" / "restart.yml").write_text(textwrap.dedent(PLAYBOOK))
    (tmp_path / "marks").mkdir(exist_ok=True)
    doc = {
        "kind": "ansible",
        "name": "test.restart",
        "playbook": "playbooks/restart.yml",
        "params": {"type": "object"},
        "inventory_hosts": {"group": "{{ params.group }}"},
        "extra_vars": {"marks": str(tmp_path / "marks"), "broken": "{{ params.broken }}"},
        "inventory_vars": {"ansible_python_interpreter": sys.executable},
        "timeout": 120,
        **extra,
    }
    act = AnsibleAction(doc, source=str(tmp_path / "restart.yaml"))
    if runtime is not None:
        act.bind(runtime)
    return act


async def test_a_selector_runs_the_playbook_over_ssh_with_the_hosts_key_in_a_0600_file_removed_after(
    runtime: SshRuntime, sshd: LocalSshd, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        out = await action(tmp_path, runtime).run({"group": "web", "broken": []}, CTX)
    assert out["status"] == "successful"
    assert out["recap"] == {
        h: {"ok": 1, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 1} for h in ("web-1", "web-2")
    }
    for name in ("web-1", "web-2"):  # ran as the inventory user; the key file was 0600 during the run
        mode, user, key_file = (tmp_path / "marks" / name).read_text().split()
        assert (mode, user) == ("600", sshd.user)
        assert not await asyncio.to_thread(Path(key_file).exists)  # removed with the run directory
    assert not (tmp_path / "marks" / "db-1").exists()
    key = sshd.client_key.read_text()
    body = key.splitlines()[1]
    assert body not in json.dumps(out) and body not in json.dumps(logs, default=str)


async def test_hosts_by_name_a_failed_host_in_the_recap_and_an_unknown_name_fails_before_running(
    runtime: SshRuntime, tmp_path: Path
) -> None:
    act = action(tmp_path, runtime, inventory_hosts="{{ params.hosts }}")
    with pytest.raises(ActionFailed) as err:
        await act.run({"hosts": ["db-1", "web-2"], "broken": ["web-2"]}, CTX)
    assert (
        err.value.output["recap"]["web-2"]["failed"] == 1 and err.value.output["recap"]["db-1"]["failed"] == 0
    )
    assert err.value.output["failures"][0]["message"] == "web-2 is broken"
    with pytest.raises(ActionFailed, match="'web-9' is not in the inventory") as unknown:
        await act.run({"hosts": ["web-1", "web-9"], "broken": []}, CTX)
    assert unknown.value.retryable is False
    assert not (tmp_path / "marks" / "web-1").exists()  # nothing ran anywhere


async def test_a_host_key_that_does_not_match_known_hosts_makes_the_host_unreachable(
    runtime: SshRuntime, sshd: LocalSshd, tmp_path: Path
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    runtime.connections.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other}")
    with pytest.raises(ActionFailed) as err:
        await action(tmp_path, runtime).run({"group": "db", "broken": []}, CTX)
    assert err.value.output["recap"]["db-1"]["unreachable"] == 1
    assert err.value.retryable is True  # only unreachable hosts failed
    assert not (tmp_path / "marks" / "db-1").exists()


def test_hosts_and_inventory_hosts_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="either 'hosts' or 'inventory_hosts'"):
        action(tmp_path, None, hosts="{{ params.hosts }}")
    with pytest.raises(CatalogError, match="a selector is"):
        action(tmp_path, None, inventory_hosts={"role": "web"})
