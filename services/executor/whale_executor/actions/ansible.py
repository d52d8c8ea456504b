"""Ansible actions: a playbook shipped beside the action's YAML, run through ansible-runner.

.. code-block:: yaml

    kind: ansible
    name: web.restart
    params:
      type: object
      properties: {hosts: {type: array, items: {type: string}}, unit: {type: string}}
      required: [hosts, unit]
    playbook: playbooks/restart.yml   # relative to this file's folder, and inside it
    hosts: "{{ params.hosts }}"       # default; names/addresses, or {name, address, port, user} mappings
    # inventory_hosts: {group: web}   # instead: inventory hosts, by selector or by names
    #                                 # ("{{ params.hosts }}"), with their address, port, user and key
    extra_vars: {unit: "{{ params.unit }}"}
    inventory_vars: {ansible_user: ops}   # fixed vars of every host (all:vars)
    timeout: 300                      # ansible-runner stops the run at the deadline

The result holds the run's ``status`` and ``rc``, the per-host ``recap`` (ok, changed, failed,
unreachable, skipped) and the failed tasks' messages (``failures``: host, task, message). A run that
failed, or reached no host, raises :class:`ActionFailed` (retryable when only unreachable hosts failed)
with that output; a run past its timeout raises :class:`ActionTimedOut`.

With ``inventory_hosts`` the hosts come from the executor's inventory (an unknown name or a selector
matching nothing fails the action, not retryable, before anything runs): their address, port and user,
and the private key (and certificate) their secret references name, decrypted with the passphrase
and written to a 0600 file of the run's private directory, removed with it; host keys are checked
against the executor's ``SSH_KNOWN_HOSTS`` (``accept-new`` only with ``SSH_TRUST_ON_FIRST_USE``).
Hosts behind a jump host (``via``) are refused.

The run happens in a private temporary directory (inventory, extra vars, key files, artifacts) removed
afterwards; extra vars and keys never reach the result or the logs. ``ansible-runner`` and ``ansible-core`` come with the
``[ansible]`` extra; without them the catalogue refuses a ``kind: ansible`` file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from whale.rules import templating
from whale_executor import secrets
from whale_executor.actions.base import ActionContext, SchemaParams, truncate
from whale_executor.actions.ssh import SshRuntime, resolve_hosts
from whale_executor.actions.yamlspec import check_keys, check_templates, integer, mapping, number
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError
from whale_executor.sshconn import client_keys

RECAP = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}
FAILED_EVENTS = ("runner_on_failed", "runner_on_unreachable")
RUN_MARK = "WHALE_ANSIBLE_RUN"


def inventory(hosts: Sequence[Any], host_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An ansible inventory (the YAML/JSON dict form) of ``hosts``: each a name or address, or a mapping
    with ``name`` and optional ``address``, ``port``, ``user`` (what an inventory host knows)."""
    entries: dict[str, dict[str, Any]] = {}
    for i, host in enumerate(hosts):
        if isinstance(host, str) and host.strip():
            entries[host.strip()] = {}
        elif isinstance(host, Mapping) and isinstance(host.get("name"), str) and host["name"]:
            entry: dict[str, Any] = {}
            for key, var in (("address", "ansible_host"), ("port", "ansible_port"), ("user", "ansible_user")):
                if host.get(key) is not None:
                    entry[var] = host[key]
            entries[host["name"]] = entry
        else:
            raise ActionFailed(f"hosts[{i}]: a host is a name or address, or a mapping with a name")
    if not entries:
        raise ActionFailed("hosts: no host to run the playbook on")
    return {"all": {"hosts": entries, "vars": dict(host_vars or {})}}


class AnsibleAction:
    kind = "ansible"

    def __init__(self, doc: Mapping[str, Any], *, source: str) -> None:
        if importlib.util.find_spec("ansible_runner") is None:
            raise CatalogError(
                "kind ansible needs ansible-runner and ansible-core (pip install 'whale[ansible]')",
                source=source,
                field="kind",
            )
        check_keys(
            doc,
            {"playbook", "hosts", "inventory_hosts", "extra_vars", "inventory_vars", "output_limit"},
            source=source,
        )
        self.name = str(doc["name"])
        self.description = str(doc.get("description", ""))
        self.idempotent = bool(doc.get("idempotent", False))
        self.timeout = number(doc, "timeout", 600.0, source=source, minimum=1)
        self._params = SchemaParams(doc.get("params"), source=source)
        self.playbook = _playbook(doc.get("playbook"), source)
        hosts = doc.get("hosts", "{{ params.hosts }}")
        if not isinstance(hosts, str | list):
            raise CatalogError(
                "must be a list of hosts or a template rendering to one", source=source, field="hosts"
            )
        check_templates(hosts, source=source, field="hosts")
        self.hosts: str | list[Any] = hosts
        self.inventory_hosts = _inventory_hosts(doc, source=source)
        self.runtime: SshRuntime | None = None
        self.extra_vars = mapping(doc, "extra_vars", source=source)
        check_templates(self.extra_vars, source=source, field="extra_vars")
        self.inventory_vars = mapping(doc, "inventory_vars", source=source)
        self.output_limit = integer(doc, "output_limit", 4096, source=source)

    @property
    def params_schema(self) -> dict[str, Any]:
        return self._params.schema

    def validate(self, params: Any) -> dict[str, Any]:
        return self._params.validate(params)

    def bind(self, runtime: SshRuntime) -> None:
        """The executor's inventory and SSH settings (for ``inventory_hosts``)."""
        self.runtime = runtime

    def prepare(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The inventory and the extra vars of a run with ``params``."""
        context = {"params": params}
        try:
            extra = templating.render_value(self.extra_vars, context, path="extra_vars")
            if self.inventory_hosts is not None:
                return inventory(self.targets(params), self.inventory_vars), extra
            hosts = templating.render_value(self.hosts, context, path="hosts")
        except templating.TemplateError as exc:
            raise ActionFailed(exc.message) from None
        if not isinstance(hosts, list):
            raise ActionFailed(f"hosts rendered to a {type(hosts).__name__}, not a list")
        return inventory(hosts, self.inventory_vars), extra

    def targets(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The ``inventory_hosts`` of a run as host entries (address, port, user; credentials later)."""
        assert self.inventory_hosts is not None
        if self.runtime is None:
            raise ActionFailed(f"{self.name}: inventory_hosts needs an inventory", retryable=False)
        found = resolve_hosts(
            self.runtime.inventory, self.inventory_hosts, {"params": params}, field="inventory_hosts"
        )
        behind = [h.name for h in found if h.via is not None]
        if behind:
            raise ActionFailed(
                f"{', '.join(behind)}: hosts behind a jump host (via) are not supported by ansible actions",
                retryable=False,
            )
        return [{"name": h.name, "address": h.address, "port": h.port, "user": h.user} for h in found]

    def credentials(self, inv: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
        """Per inventory host of the run: its private key (unencrypted OpenSSH text) and certificate."""
        if self.inventory_hosts is None or self.runtime is None:
            return {}
        out: dict[str, tuple[str, str | None]] = {}
        for name in inv["all"]["hosts"]:
            keys = client_keys(self.runtime.inventory.get(name))
            key, cert = keys[0] if isinstance(keys[0], tuple) else (keys[0], None)
            text = secrets.remember(key.export_private_key("openssh").decode("ascii"))
            out[name] = (text, cert.export_certificate("openssh").decode("ascii") if cert else None)
        return out

    def ssh_args(self) -> str:
        """``ansible_ssh_common_args`` of inventory hosts: the executor's known_hosts, strictly."""
        assert self.runtime is not None
        conns = self.runtime.connections
        strict = "accept-new" if conns.trust_on_first_use else "yes"
        return (
            f"-o UserKnownHostsFile={shlex.quote(str(conns.known_hosts))} -o StrictHostKeyChecking={strict}"
            " -o IdentitiesOnly=yes -o IdentityAgent=none -o PasswordAuthentication=no"
        )

    async def run(self, params: Any, ctx: ActionContext) -> Any:
        inv, extra = self.prepare(params)
        keys = self.credentials(inv)
        if keys:
            for name in keys:
                inv["all"]["hosts"][name]["ansible_ssh_common_args"] = self.ssh_args()
        cancelled = threading.Event()
        started = time.monotonic()
        try:
            output = await _own_thread(f"ansible {self.name}", lambda: self._run(inv, extra, cancelled, keys))
        except asyncio.CancelledError:
            cancelled.set()  # ansible-runner polls it and stops the playbook's process
            raise
        output["elapsed_ms"] = round((time.monotonic() - started) * 1000)
        if output["status"] == "timeout":
            raise ActionTimedOut(
                f"playbook {self.playbook.name} did not finish within {self.timeout:g}s", output=output
            )
        if output["status"] != "successful":
            failures = output["failures"]
            first = f": {failures[0]['host']}: {failures[0]['message']}" if failures else ""
            only_unreachable = bool(failures) and all(f["unreachable"] for f in failures)
            raise ActionFailed(
                f"playbook {self.playbook.name} {output['status']} (rc {output['rc']}){first}",
                output=output,
                retryable=only_unreachable,
            )
        return output

    def _run(
        self,
        inv: dict[str, Any],
        extra: dict[str, Any],
        cancelled: threading.Event,
        keys: Mapping[str, tuple[str, str | None]],
    ) -> dict[str, Any]:
        import ansible_runner  # the optional [ansible] extra, checked at load

        workdir = tempfile.mkdtemp(prefix="whale-ansible-")  # 0700, this process's user only
        try:
            _write_keys(Path(workdir) / "keys", inv, keys)
            runner = ansible_runner.run(
                private_data_dir=workdir,
                playbook=str(self.playbook),
                inventory=inv,
                extravars=extra,
                timeout=max(1, round(self.timeout)),
                quiet=True,
                envvars={
                    RUN_MARK: workdir,  # inherited by every process of the run: see _kill_marked
                    "PATH": _path(),
                    "ANSIBLE_LOCAL_TEMP": str(Path(workdir) / "local"),
                    "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_HOST_KEY_CHECKING": "True",  # ansible-runner turns it off unless told
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": str(Path(workdir) / "cp"),  # gone with the run
                },
                cancel_callback=cancelled.is_set,
                settings={"suppress_ansible_output": True},
            )
            return self._output(runner, list(inv["all"]["hosts"]))
        finally:
            _kill_marked(workdir)
            shutil.rmtree(workdir, ignore_errors=True)

    def _output(self, runner: Any, hosts: list[str]) -> dict[str, Any]:
        stats = runner.stats or {}
        recap = {
            h: {name: int((stats.get(key) or {}).get(h, 0)) for key, name in RECAP.items()} for h in hosts
        }
        failures = []
        for event in runner.events:
            if event.get("event") not in FAILED_EVENTS:
                continue
            data = event.get("event_data") or {}
            if data.get("ignore_errors"):
                continue
            res = data.get("res") or {}
            message = str(res.get("msg") or res.get("stderr") or res.get("reason") or "failed")
            failures.append(
                {
                    "host": data.get("host"),
                    "task": data.get("task"),
                    "message": truncate(message, self.output_limit)[0],
                    "unreachable": event["event"] == "runner_on_unreachable",
                }
            )
        output = {"status": runner.status, "rc": runner.rc, "recap": recap, "failures": failures}
        if runner.status != "successful" and not failures:  # e.g. a playbook error before any task
            text = runner.stdout.read() if runner.stdout is not None else ""
            output["log_tail"] = text[-self.output_limit :]
        return output


async def _own_thread(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()`` in a thread of its own: a playbook holds its thread for minutes, and must not take
    the event loop's shared default pool away from everything else that uses it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[dict[str, Any]] = loop.create_future()

    def settle(result: dict[str, Any] | None, error: BaseException | None) -> None:
        if future.done():  # the waiter was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or {})

    def target() -> None:
        result: dict[str, Any] | None = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as exc:  # handed to the waiter
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future


def _write_keys(folder: Path, inv: dict[str, Any], keys: Mapping[str, tuple[str, str | None]]) -> None:
    """Each host's key in a 0600 file (its certificate beside it, as ssh looks for it) named in its
    ``ansible_ssh_private_key_file``; the run's directory, and so these files, go after the run."""
    if not keys:
        return
    folder.mkdir(mode=0o700)
    for i, (name, (key, cert)) in enumerate(sorted(keys.items())):
        path = folder / f"id-{i}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key)
        if cert is not None:
            path.with_name(f"id-{i}-cert.pub").write_text(cert, encoding="ascii")
        inv["all"]["hosts"][name]["ansible_ssh_private_key_file"] = str(path)


def _inventory_hosts(doc: Mapping[str, Any], *, source: str) -> str | list[Any] | dict[str, Any] | None:
    spec = doc.get("inventory_hosts")
    if spec is None:
        return None
    if "hosts" in doc:
        raise CatalogError("give either 'hosts' or 'inventory_hosts'", source=source, field="inventory_hosts")
    if isinstance(spec, Mapping):
        if not spec or set(spec) - {"group", "labels"} or not isinstance(spec.get("labels", {}), Mapping):
            raise CatalogError(
                "a selector is {group: ..., labels: {...}}", source=source, field="inventory_hosts"
            )
        spec = dict(spec)
    elif not isinstance(spec, str | list):
        raise CatalogError(
            "must be a selector, a list of host names or a template rendering to one",
            source=source,
            field="inventory_hosts",
        )
    check_templates(spec, source=source, field="inventory_hosts")
    return spec


def _playbook(raw: Any, source: str) -> Path:
    if not isinstance(raw, str) or not raw:
        raise CatalogError(
            "required: the playbook's path, relative to this file", source=source, field="playbook"
        )
    folder = Path(source).parent.resolve()
    path = (folder / raw).resolve()
    if not path.is_relative_to(folder):
        raise CatalogError("must stay inside the action's folder", source=source, field="playbook")
    if not path.is_file():
        raise CatalogError(f"no such file: {path}", source=source, field="playbook")
    return path


def _kill_marked(workdir: str) -> None:
    """Kill what is left of a run. ansible-runner kills ansible-playbook's process group at a timeout
    or cancel, but ansible's workers run in sessions of their own (a local task's command with them);
    they carry the run's mark in their environment (Linux ``/proc``; elsewhere nothing is done)."""
    mark = f"{RUN_MARK}={workdir}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError, ValueError):
            if mark in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGKILL)


def _path() -> str:
    """PATH with this interpreter's bin first: ansible-playbook of its environment (a venv's bin is not
    always on the executor's PATH)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
