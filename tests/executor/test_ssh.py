"""SSH actions against a real OpenSSH server (Debian's sshd on a loopback port, generated keys)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from whale_executor.actions.base import ActionContext
from whale_executor.actions.ssh import SshAction, SshRuntime
from whale_executor.app import Executor, ssh_runtime
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError
from whale_executor.runner import Runner
from whale_executor.settings import Settings
from whale_executor.sshconn import Connections

from tests.ports import free_port
from whale.infra.sshd import LocalSshd
from whale.inventory import Host, Inventory, InventoryError

from .test_actions import _alive

CTX = ActionContext(request_id="r1", idempotency_key="k1", pool="test")
HOSTILE = ["; rm -rf /", "$(touch /tmp/whale-pwned)", "`id`", "a'b\"c", "line1\nline2", "*", "$HOME", "-n"]


def host(sshd: LocalSshd, name: str = "vm-1", **over: Any) -> Host:
    fields: dict[str, Any] = {
        "name": name,
        "address": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "key": f"file:{sshd.client_key}",
        "groups": ("web",),
        "labels": {"role": "web"},
    }
    return Host.model_validate({**fields, **over})


@pytest.fixture
def known_hosts(tmp_path: Path, sshd: LocalSshd) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line)
    return path


@pytest.fixture
async def runtime(sshd: LocalSshd, known_hosts: Path) -> AsyncIterator[SshRuntime]:
    rt = SshRuntime(
        inventory=Inventory([host(sshd), host(sshd, "vm-2")], sources=["test"]),
        connections=Connections(known_hosts=known_hosts, per_host=3),
    )
    yield rt
    await rt.connections.close()


def ssh(runtime: SshRuntime | None, **doc: Any) -> SshAction:
    doc.setdefault("host", "{{ params.host }}")
    action = SshAction({"kind": "ssh", "name": "t.ssh", **doc}, source="/t/ssh.yaml")
    if runtime is not None:
        action.bind(runtime)
    return action


async def test_a_command_runs_on_the_host_with_its_output_and_exit_code(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["sh", "-c", "echo out; echo err >&2"])
    out = await action.run(action.validate({"host": "vm-1"}), CTX)
    assert out["stdout"] == "out\n"
    assert out["stderr"] == "err\n"
    assert out["exit_code"] == 0
    assert out["host"] == "vm-1"


async def test_a_non_zero_exit_fails_with_the_exit_code_and_stderr(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["sh", "-c", "echo oops >&2; exit 3"])
    with pytest.raises(ActionFailed) as err:
        await action.run({"host": "vm-1"}, CTX)
    assert err.value.output["exit_code"] == 3
    assert err.value.output["stderr"] == "oops\n"
    assert "exited with code 3" in err.value.message


async def test_success_codes_accept_other_exit_codes(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["sh", "-c", "exit 1"], success_codes=[0, 1])
    assert (await action.run({"host": "vm-1"}, CTX))["exit_code"] == 1


async def test_hostile_params_reach_the_remote_program_as_literal_arguments(runtime: SshRuntime) -> None:
    argv = ["printf", "%s|", *(f"{{{{ params.v[{i}] }}}}" for i in range(len(HOSTILE)))]
    action = ssh(runtime, argv=argv, params={"type": "object"})
    out = await action.run({"host": "vm-1", "v": HOSTILE}, CTX)
    assert out["stdout"] == "".join(f"{v}|" for v in HOSTILE)
    assert not _exists(Path("/tmp/whale-pwned"))


async def test_env_is_an_allowlist_and_set_env_values_are_quoted(
    runtime: SshRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHALE_TEST_VISIBLE", "yes")
    monkeypatch.setenv("WHALE_TEST_HIDDEN", "secret")
    action = ssh(
        runtime,
        argv=["env"],
        env=["WHALE_TEST_VISIBLE"],
        set_env={"WHALE_FIXED": "{{ params.value }}"},
    )
    out = await action.run({"host": "vm-1", "value": "x; $(id) 'y'"}, CTX)
    lines = out["stdout"].splitlines()
    assert "WHALE_TEST_VISIBLE=yes" in lines
    assert "WHALE_FIXED=x; $(id) 'y'" in lines
    assert "WHALE_TEST_HIDDEN" not in out["stdout"]


async def test_cwd_is_where_the_command_runs(runtime: SshRuntime, tmp_path: Path) -> None:
    action = ssh(runtime, argv=["pwd"], cwd=str(tmp_path))
    assert (await action.run({"host": "vm-1"}, CTX))["stdout"] == f"{tmp_path}\n"


async def test_a_script_shipped_with_the_action_runs_with_its_arguments(
    runtime: SshRuntime, tmp_path: Path
) -> None:
    (tmp_path / "check.sh").write_text('printf "%s|" "$@"\necho\nexit 4\n')
    doc = {"kind": "ssh", "name": "t.script", "host": "vm-1", "script": "check.sh"}
    action = SshAction({**doc, "args": ["{{ params.a }}", "two words"]}, source=str(tmp_path / "t.yaml"))
    action.bind(runtime)
    with pytest.raises(ActionFailed) as err:
        await action.run({"a": "$(id)"}, CTX)
    assert err.value.output["stdout"] == "$(id)|two words|\n"
    assert err.value.output["exit_code"] == 4


async def test_output_is_cut_at_the_limit(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["sh", "-c", "yes | head -c 100000"], output_limit=1000)
    out = await action.run({"host": "vm-1"}, CTX)
    assert len(out["stdout"]) == 1000
    assert out["stdout_truncated"] is True


async def test_at_the_timeout_the_remote_command_is_killed(runtime: SshRuntime, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    await ssh(runtime, argv=["true"]).run({"host": "vm-1"}, CTX)  # connected: the timeout is the command's
    action = ssh(runtime, argv=["sh", "-c", f"echo $$ > {marker}; exec sleep 60"], timeout=3)
    with pytest.raises(ActionTimedOut) as err:
        await action.run({"host": "vm-1"}, CTX)
    assert err.value.retryable is True
    assert err.value.output["killed"] is True
    pid = int(marker.read_text())
    for _ in range(100):  # the kill is asynchronous on the server side
        if not _alive(pid):
            break
        await asyncio.sleep(0.1)
    assert not _alive(pid)


async def test_an_unknown_host_fails_without_connecting_anywhere(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["true"])
    with pytest.raises(ActionFailed) as err:
        await action.run({"host": "vm-404"}, CTX)
    assert err.value.retryable is False
    assert "'vm-404' is not in the inventory" in err.value.message
    assert err.value.problems[0]["field"] == "host"
    assert runtime.connections.opened == 0


async def test_a_selector_runs_on_every_matching_host(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["echo", "hi"], host=None, hosts={"group": "{{ params.group }}"}, parallel=1)
    out = await action.run({"group": "web"}, CTX)
    assert sorted(out["hosts"]) == ["vm-1", "vm-2"]
    assert out["hosts"]["vm-2"]["output"]["stdout"] == "hi\n"
    assert out["failed"] == []
    with pytest.raises(ActionFailed) as err:
        await action.run({"group": "db"}, CTX)
    assert err.value.retryable is False
    assert "no inventory host matches" in err.value.message
    numeric = ssh(runtime, argv=["true"], host=None, hosts={"labels": {"tier": 1}})
    with pytest.raises(ActionFailed, match=r"hosts\.labels\.tier"):
        await numeric.run({}, CTX)


async def test_a_burst_never_runs_more_sessions_on_a_host_than_the_limit(
    runtime: SshRuntime, tmp_path: Path
) -> None:
    log = tmp_path / "sessions"
    script = f"echo start >> {log}; sleep 0.3; echo end >> {log}"
    action = ssh(runtime, argv=["sh", "-c", script])
    await asyncio.gather(*(action.run({"host": "vm-1"}, CTX) for _ in range(12)))
    running = most = 0
    for line in log.read_text().split():
        running += 1 if line == "start" else -1
        most = max(most, running)
    assert log.read_text().split().count("end") == 12
    assert most <= runtime.connections.per_host
    assert runtime.connections.opened == 1  # one connection, reused by every session


async def test_without_reuse_each_action_opens_its_own_connection(sshd: LocalSshd, known_hosts: Path) -> None:
    rt = SshRuntime(Inventory([host(sshd)]), Connections(known_hosts=known_hosts, reuse=False))
    action = ssh(rt, argv=["true"])
    for _ in range(3):
        await action.run({"host": "vm-1"}, CTX)
    assert rt.connections.opened == 3


async def test_an_idle_pooled_connection_is_closed(sshd: LocalSshd, known_hosts: Path) -> None:
    rt = SshRuntime(Inventory([host(sshd)]), Connections(known_hosts=known_hosts, idle=0.2))
    await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    for _ in range(100):
        if rt.connections.pooled == 0:
            break
        await asyncio.sleep(0.05)
    assert rt.connections.pooled == 0
    await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)  # and opened again when needed
    assert rt.connections.opened == 2
    await rt.connections.close()


async def test_a_pooled_connection_the_host_dropped_is_replaced(runtime: SshRuntime) -> None:
    action = ssh(runtime, argv=["true"])
    await action.run({"host": "vm-1"}, CTX)
    for conn in list(runtime.connections._conns.values()):
        conn.abort()
    await action.run({"host": "vm-1"}, CTX)
    assert runtime.connections.opened == 2


async def test_a_host_behind_a_jump_host_is_reached_through_it(sshd: LocalSshd, known_hosts: Path) -> None:
    inventory = Inventory([host(sshd, "bastion"), host(sshd, "vm-behind", via="bastion")])
    rt = SshRuntime(inventory, Connections(known_hosts=known_hosts, lookup=inventory.get))
    out = await ssh(rt, argv=["sh", "-c", "echo $SSH_CLIENT"]).run({"host": "vm-behind"}, CTX)
    await rt.connections.close()
    assert rt.connections.opened == 2  # the jump host's connection, then the host's through it
    assert out["stdout"].startswith("127.0.0.1 ")


async def test_a_jump_host_that_refuses_fails_the_host_behind_it(
    sshd: LocalSshd, known_hosts: Path, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    inventory = Inventory(
        [host(sshd, "bastion", key=f"file:{stranger}"), host(sshd, "vm-behind", via="bastion")]
    )
    rt = SshRuntime(inventory, Connections(known_hosts=known_hosts, lookup=inventory.get))
    with pytest.raises(ActionFailed) as err:
        await ssh(rt, argv=["true"]).run({"host": "vm-behind"}, CTX)
    assert err.value.retryable is False
    assert err.value.message.startswith("bastion ") and "login refused" in err.value.message


async def test_a_host_key_that_does_not_match_known_hosts_is_refused(sshd: LocalSshd, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    rt = SshRuntime(Inventory([host(sshd)]), Connections(known_hosts=known, trust_on_first_use=True))
    with pytest.raises(ActionFailed) as err:
        await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    assert err.value.retryable is False
    assert "host key not trusted" in err.value.message


async def test_a_host_missing_from_known_hosts_is_refused_by_default(sshd: LocalSshd, tmp_path: Path) -> None:
    rt = SshRuntime(Inventory([host(sshd)]), Connections(known_hosts=tmp_path / "none"))
    with pytest.raises(ActionFailed) as err:
        await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    assert err.value.retryable is False
    assert not (tmp_path / "none").exists()


async def test_trust_on_first_use_records_the_key_then_checks_it(sshd: LocalSshd, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    rt = SshRuntime(Inventory([host(sshd)]), Connections(known_hosts=known, trust_on_first_use=True))
    await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    await rt.connections.close()
    assert known.read_text() == sshd.known_hosts_line
    strict = SshRuntime(Inventory([host(sshd)]), Connections(known_hosts=known))
    await ssh(strict, argv=["true"]).run({"host": "vm-1"}, CTX)
    await strict.connections.close()


async def test_a_key_the_host_does_not_accept_is_refused_not_retryable(
    sshd: LocalSshd, known_hosts: Path, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    rt = SshRuntime(Inventory([host(sshd, key=f"file:{stranger}")]), Connections(known_hosts=known_hosts))
    with pytest.raises(ActionFailed) as err:
        await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    assert err.value.retryable is False
    assert "login refused" in err.value.message


@pytest.mark.filterwarnings("ignore:.*bcrypt.kdf.. called with only 1 round")  # a fast test key
async def test_an_encrypted_key_needs_its_passphrase(
    sshd: LocalSshd, known_hosts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    key = asyncssh.read_private_key(str(sshd.client_key))
    key.write_private_key(str(locked), passphrase="open sesame", rounds=1)
    monkeypatch.setenv("WHALE_TEST_PASSPHRASE", "open sesame")
    good = host(sshd, key=f"file:{locked}", passphrase="env:WHALE_TEST_PASSPHRASE")
    rt = SshRuntime(Inventory([good]), Connections(known_hosts=known_hosts))
    assert (await ssh(rt, argv=["echo", "ok"]).run({"host": "vm-1"}, CTX))["stdout"] == "ok\n"
    await rt.connections.close()
    monkeypatch.setenv("WHALE_TEST_PASSPHRASE", "wrong")
    rt = SshRuntime(Inventory([good]), Connections(known_hosts=known_hosts))
    with pytest.raises(ActionFailed) as err:
        await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    assert err.value.retryable is False
    assert "open sesame" not in err.value.message


async def test_a_refused_connection_is_retryable(sshd: LocalSshd, known_hosts: Path) -> None:
    rt = SshRuntime(Inventory([host(sshd, port=free_port())]), Connections(known_hosts=known_hosts))
    with pytest.raises(ActionFailed) as err:
        await ssh(rt, argv=["true"]).run({"host": "vm-1"}, CTX)
    assert err.value.retryable is True
    assert "cannot connect" in err.value.message


async def test_an_unbound_action_says_an_inventory_is_needed() -> None:
    with pytest.raises(ActionFailed) as err:
        await ssh(None, argv=["true"]).run({"host": "vm-1"}, CTX)
    assert "WHALE_EXECUTOR_INVENTORY" in err.value.message


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"argv": ["true"], "host": None}, "host"),
        ({"argv": ["true"], "hosts": {"group": "web"}}, "host"),
        ({"argv": ["true"], "script": "x.sh"}, "argv"),
        ({"argv": "rm -rf {{ params.x }}"}, "argv"),
        ({"argv": ["{{ params.prog }}"]}, "argv[0]"),
        ({"argv": ["true"], "args": ["x"]}, "args"),
        ({"script": "missing.sh"}, "script"),
        ({"argv": ["true"], "set_env": {"BAD NAME": "x"}}, "env"),
        ({"argv": ["true"], "hosts": {"colour": "red"}, "host": None}, "hosts"),
        ({"argv": ["true"], "user": "root"}, "user"),
        ({"argv": ["true"], "parallel": 2}, "parallel"),
    ],
)
def test_definition_errors_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(CatalogError) as err:
        ssh(None, **doc)
    assert err.value.field == field


def _exists(path: Path) -> bool:
    return path.exists()


async def test_the_executor_binds_its_ssh_actions_to_the_configured_inventory(
    sshd: LocalSshd, known_hosts: Path, tmp_path: Path
) -> None:
    (tmp_path / "inventory.yaml").write_text(
        f"defaults: {{user: {sshd.user}, key: 'file:{sshd.client_key}'}}\n"
        f"hosts:\n  vm-9: {{address: 127.0.0.1, port: {sshd.port}}}\n"
    )
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "who.yaml").write_text(
        "kind: ssh\nname: t.who\nhost: '{{ params.host }}'\nargv: [echo, '{{ params.host }}']\n"
    )
    settings = Settings(
        inventory=[tmp_path / "inventory.yaml"],
        catalog_dirs=[tmp_path / "catalog"],
        ssh_known_hosts=known_hosts,
        entry_points=False,
    )
    executor = Executor(settings)
    runner = Runner(pool="test", concurrency=4)
    try:
        ok = await runner.execute(executor.catalog.actions["t.who"], {"host": "vm-9"}, CTX)
        unknown = await runner.execute(executor.catalog.actions["t.who"], {"host": "vm-0"}, CTX)
    finally:
        await executor.ssh.connections.close()
    assert ok.status == "succeeded" and ok.output["stdout"] == "vm-9\n"
    assert unknown.status == "failed"
    assert unknown.error is not None and unknown.error["retryable"] is False


def test_a_bad_inventory_stops_the_executor_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("hosts:\n  vm-1: {address: 10.0.0.1}\n")
    with pytest.raises(InventoryError) as err:
        ssh_runtime(Settings(inventory=[tmp_path / "inventory.yaml"]))
    assert err.value.field == "hosts.vm-1.user"
