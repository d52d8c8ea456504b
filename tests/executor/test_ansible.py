"""Ansible actions through the real ansible-runner against localhost (ansible_connection: local): the
per-host recap, a failing task's message, the timeout, the inventory of a host list, load checks."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from whale_executor.actions.ansible import AnsibleAction, inventory
from whale_executor.actions.base import ActionContext
from whale_executor.catalog import load_catalog
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError

CTX = ActionContext(request_id="r1", idempotency_key="k1", pool="t")

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      ansible.builtin.debug: {msg: "hello {{ who }}"}
    - name: touch the mark
      ansible.builtin.file: {path: "{{ mark }}", state: touch}
    - name: skipped here
      ansible.builtin.debug: {msg: never}
      when: false
    - name: maybe fail
      ansible.builtin.fail: {msg: "refusing for {{ who }}"}
      when: fail | bool
    - name: maybe hang
      ansible.builtin.command: {argv: [sleep, "{{ hang }}"]}
      when: hang | int > 0
"""


def action(tmp_path: Path, **extra: Any) -> AnsibleAction:
    (tmp_path / "playbooks").mkdir(exist_ok=True)
    (tmp_path / "playbooks" / "hello.yml").write_text(textwrap.dedent(PLAYBOOK))
    doc = {
        "kind": "ansible",
        "name": "test.hello",
        "playbook": "playbooks/hello.yml",
        "params": {"type": "object", "properties": {"hosts": {"type": "array"}, "who": {"type": "string"}}},
        "extra_vars": {
            "who": "{{ params.who }}",
            "mark": str(tmp_path / "mark"),
            "fail": "{{ params.fail }}",
        },
        "inventory_vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "timeout": 60,
        **extra,
    }
    doc["extra_vars"] = {**doc["extra_vars"], "hang": "{{ params.hang }}"}
    return AnsibleAction(doc, source=str(tmp_path / "hello.yaml"))


def params(**kw: Any) -> dict[str, Any]:
    return {"hosts": ["localhost"], "who": "ann", "fail": False, "hang": 0, **kw}


async def test_a_playbook_run_reports_the_per_host_recap(tmp_path: Path) -> None:
    out = await action(tmp_path).run(params(), CTX)
    assert out["status"] == "successful" and out["rc"] == 0 and out["failures"] == []
    assert out["recap"] == {"localhost": {"ok": 2, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 3}}
    assert (tmp_path / "mark").exists()
    assert "ann" not in str(out)  # extra vars do not reach the result


async def test_a_failing_task_fails_the_action_with_its_message(tmp_path: Path) -> None:
    with pytest.raises(ActionFailed) as err:
        await action(tmp_path).run(params(fail=True), CTX)
    out = err.value.output
    assert out["failures"] == [
        {"host": "localhost", "task": "maybe fail", "message": "refusing for ann", "unreachable": False}
    ]
    assert out["recap"]["localhost"]["failed"] == 1 and out["status"] == "failed"
    assert err.value.message == "playbook hello.yml failed (rc 2): localhost: refusing for ann"
    assert err.value.retryable is False


async def test_a_playbook_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    with pytest.raises(ActionTimedOut) as err:
        await action(tmp_path, timeout=3).run(params(hang=60), CTX)
    assert err.value.output["status"] == "timeout"
    assert err.value.message == "playbook hello.yml did not finish within 3s"
    assert playbook_processes(tmp_path) == []  # ansible's workers (own sessions) are killed too


def playbook_processes(tmp_path: Path) -> list[str]:
    """Live processes whose command line names this test's playbook (Linux ``/proc``)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if str(tmp_path / "playbooks").encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
    return found


async def test_a_cancelled_run_stops_the_playbook(tmp_path: Path) -> None:
    run = asyncio.create_task(action(tmp_path).run(params(hang=60), CTX))
    async with asyncio.timeout(60):
        while not playbook_processes(tmp_path):
            await asyncio.sleep(0.05)
    run.cancel()  # what the runner does at its deadline, or the executor when it stops
    with pytest.raises(asyncio.CancelledError):
        await run
    async with asyncio.timeout(60):  # ansible-runner polls the cancel flag and ends ansible-playbook
        while playbook_processes(tmp_path):
            await asyncio.sleep(0.1)


def test_a_host_list_becomes_an_inventory() -> None:
    hosts = ["web-01", {"name": "db-01", "address": "10.0.0.5", "port": 2222, "user": "ops"}]
    assert inventory(hosts, {"ansible_connection": "ssh"}) == {
        "all": {
            "hosts": {
                "web-01": {},
                "db-01": {"ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_user": "ops"},
            },
            "vars": {"ansible_connection": "ssh"},
        }
    }
    with pytest.raises(ActionFailed, match=r"hosts\[0\]"):
        inventory([5])
    with pytest.raises(ActionFailed, match="no host"):
        inventory([])


@pytest.mark.parametrize(
    ("playbook", "message"),
    [("../outside.yml", "must stay inside the action's folder"), ("missing.yml", "no such file")],
)
def test_the_playbook_must_be_a_file_beside_the_action(tmp_path: Path, playbook: str, message: str) -> None:
    (tmp_path / "outside.yml").write_text("[]")
    folder = tmp_path / "actions"
    folder.mkdir()
    (folder / "a.yaml").write_text(f"kind: ansible\nname: a\nplaybook: {playbook}\n")
    with pytest.raises(CatalogError) as err:
        load_catalog(pool="t", dirs=[folder], use_entry_points=False)
    assert message in str(err.value) and "playbook" in str(err.value)
