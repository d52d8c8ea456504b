"""SSH actions: an argv command (or a script shipped with the action) run on inventory hosts.

.. code-block:: yaml

    kind: ssh
    name: logs.clean
    params: {type: object, properties: {host: {type: string}, dir: {type: string}}, required: [host, dir]}
    host: "{{ params.host }}"          # an inventory host name, or instead:
    # hosts: {group: "{{ params.group }}", labels: {role: web}}   # every matching host,
    # parallel: 10                     # at most this many of them at once
    argv: [find, "{{ params.dir }}", -mtime, "+7", -delete]      # or:
    # script: clean.sh                 # next to this file, fed to `sh -s -- ARGS` on the host
    # args: ["{{ params.dir }}"]
    # interpreter: bash                # default sh
    cwd: /var/log
    env: [LANG]                        # names passed through from the executor's environment
    set_env: {LC_ALL: C}               # fixed values (templated)
    timeout: 60                        # the whole run: waiting for a session slot, connecting, running
    output_limit: 65536
    success_codes: [0]

Each argv item (rendered from params exactly like a shell action's) is quoted with
:func:`shlex.quote` into the command line the remote user's POSIX shell runs, so event data is
always one literal argument, never shell syntax. Host, connection and session handling:
:mod:`whale_executor.sshconn`; hosts: :mod:`whale.inventory`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from pydantic import ValidationError

from whale.inventory import Host, Inventory, Selector, UnknownHost
from whale.rules import templating
from whale_executor.actions.base import ActionContext
from whale_executor.actions.shell import ShellAction, collect, read_limited, run_output
from whale_executor.actions.yamlspec import check_keys, check_templates, integer, number
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError, RunError
from whale_executor.sshconn import Connections, connect_error

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHELL_KEYS = {"cwd", "env", "set_env", "output_limit", "success_codes"}
# The session's shell is the leader of its process group (sshd calls setsid): it reports its pid
# first, so a timeout can kill the whole group from a second session (sshd refuses signal requests
# for root logins and when it runs without privilege separation).
_MARK = "whale-pgid"
_MARK_COMMAND = f"printf '{_MARK} %s\\n' \"$$\" >&2"
_STALE = (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError)


@dataclass
class SshRuntime:
    """What SSH actions need at run time: the inventory and the executor's connections."""

    inventory: Inventory
    connections: Connections


class SshAction:
    kind = "ssh"

    def __init__(self, doc: Mapping[str, Any], *, source: str) -> None:
        check_keys(
            doc,
            _SHELL_KEYS | {"host", "hosts", "parallel", "argv", "script", "args", "interpreter"},
            source=source,
        )
        self.name = str(doc["name"])
        self.description = str(doc.get("description", ""))
        self.idempotent = bool(doc.get("idempotent", False))
        self.timeout = number(doc, "timeout", 60.0, source=source, minimum=0.001)
        self.host, self.hosts = _target(doc, source=source)
        if "parallel" in doc and self.hosts is None:
            raise CatalogError("only with 'hosts' (a selector)", source=source, field="parallel")
        self.parallel = integer(doc, "parallel", 10, source=source) or 1  # hosts of a selector at once
        self.script: bytes | None = None
        if ("argv" in doc) == ("script" in doc):
            raise CatalogError("give either 'argv' or 'script'", source=source, field="argv")
        if "script" in doc:
            argv = [*_interpreter(doc, source=source), "-s", "--", *_args(doc, source=source)]
            self.script = _script(doc["script"], source=source)
        else:
            for key in ("args", "interpreter"):
                if key in doc:
                    raise CatalogError("only with 'script'", source=source, field=key)
            argv = doc["argv"]
        spec = {k: v for k, v in doc.items() if k in _SHELL_KEYS | {"name", "params"}}
        self._shell = ShellAction({**spec, "argv": argv}, source=source)  # argv, env, params, limits
        for name in [*self._shell.env_allow, *self._shell.set_env]:
            if not _ENV_NAME.match(name):
                raise CatalogError(
                    f"{name!r} is not an environment variable name", source=source, field="env"
                )
        self.runtime: SshRuntime | None = None

    @property
    def params_schema(self) -> dict[str, Any]:
        return self._shell.params_schema

    def validate(self, params: Any) -> dict[str, Any]:
        return self._shell.validate(params)

    def bind(self, runtime: SshRuntime) -> None:
        self.runtime = runtime

    def command(self, params: Mapping[str, Any]) -> str:
        """The command line for the remote shell: every argument and env value quoted."""
        argv, env = self._shell.command(params)
        words = [f"{k}={shlex.quote(v)}" for k, v in env.items()] + [shlex.quote(a) for a in argv]
        line = " ".join(words)
        if self._shell.cwd:
            line = f"cd {shlex.quote(self._shell.cwd)} && {line}"
        return f"{_MARK_COMMAND}; {line}"

    def targets(self, params: Mapping[str, Any]) -> list[Host]:
        """The inventory hosts this run acts on; an unknown name or empty selector fails, not retryable."""
        if self.runtime is None:
            raise ActionFailed(
                f"{self.name}: SSH actions need an inventory (WHALE_EXECUTOR_INVENTORY)", retryable=False
            )
        context = {"params": params}
        if self.host is not None:
            return resolve_hosts(self.runtime.inventory, [self.host], context, field="host")
        assert self.hosts is not None
        return resolve_hosts(self.runtime.inventory, self.hosts, context, field="hosts")

    async def run(self, params: Any, ctx: ActionContext) -> Any:
        deadline = time.monotonic() + self.timeout
        hosts = self.targets(params)
        command = self.command(params)
        if self.host is not None:
            return await self.run_on(hosts[0], command, deadline)
        turns = asyncio.Semaphore(self.parallel)

        async def one(host: Host) -> dict[str, Any]:
            async with turns:
                return await self.run_on(host, command, deadline)

        results = await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)
        return _combined(hosts, results)

    async def run_on(self, host: Host, command: str, deadline: float) -> dict[str, Any]:
        """Run ``command`` on ``host`` within the per-host limit; the output, or a RunError."""
        assert self.runtime is not None
        conns = self.runtime.connections
        started = time.monotonic()
        try:
            async with asyncio.timeout(deadline - started):
                await conns.slot(host).acquire()
        except TimeoutError:
            raise ActionTimedOut(
                f"{host.name}: no SSH session slot within {self.timeout:g}s ({conns.per_host} busy)"
            ) from None
        try:
            stale: asyncssh.SSHClientConnection | None = None
            while True:
                async with conns.connection(host, stale=stale, deadline=deadline) as conn:
                    try:
                        proc = await conn.create_process(command, encoding=None)
                    except _STALE as exc:
                        if stale is None and conns.reuse:
                            stale = conn  # a pooled connection the host dropped: open a new one, once
                            continue
                        raise connect_error(exc, host, conns.known_hosts) from None
                    return await self._session(host, conn, proc, deadline, started)
        finally:
            conns.slot(host).release()

    async def _session(
        self,
        host: Host,
        conn: asyncssh.SSHClientConnection,
        proc: asyncssh.SSHClientProcess[bytes],
        deadline: float,
        started: float,
    ) -> dict[str, Any]:
        limit = self._shell.output_limit
        if self.script is not None:
            proc.stdin.write(self.script)
        proc.stdin.write_eof()
        pgid: int | None = None
        early = ""
        readers: asyncio.Future[tuple[tuple[str, bool], tuple[str, bool]]] | None = None
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                pgid, early = _marked(await proc.stderr.readline())
                readers = asyncio.gather(read_limited(proc.stdout, limit), read_limited(proc.stderr, limit))
                await proc.wait_closed()
        except TimeoutError:
            await _kill(conn, proc, pgid)
            out, out_cut, err, err_cut = await _collected(readers)
            output = _output(host, None, out, out_cut, early + err, err_cut, started)
            output["killed"] = True
            raise ActionTimedOut(
                f"{host.name}: {self._shell.argv[0]} did not finish within {self.timeout:g}s; it was killed",
                output=output,
            ) from None
        except BaseException:
            if readers is not None:
                readers.cancel()
            await _kill(conn, proc, pgid)
            raise
        out, out_cut, err, err_cut = await _collected(readers)
        code = proc.exit_status if proc.exit_status is not None and proc.exit_status >= 0 else None
        output = _output(host, code, out, out_cut, early + err, err_cut, started)
        if proc.exit_signal:
            output["signal"] = proc.exit_signal[0]
        if code not in self._shell.success_codes:
            how = f"exited with code {code}" if code is not None else f"was killed ({output.get('signal')})"
            raise ActionFailed(f"{host.name}: {self._shell.argv[0]} {how}", output=output)
        return output


def _marked(first: bytes) -> tuple[int | None, str]:
    """The process group the marker line reports, or (None, the line) if it is not the marker."""
    text = first.decode("utf-8", "replace")
    mark, _, pid = text.strip().partition(" ")
    if mark == _MARK and pid.isdigit():
        return int(pid), ""
    return None, text


async def _collected(
    readers: asyncio.Future[tuple[tuple[str, bool], tuple[str, bool]]] | None,
) -> tuple[str, bool, str, bool]:
    if readers is None:
        return "", False, "", False
    (out, out_cut), (err, err_cut) = await collect(readers)
    return out, out_cut, err, err_cut


async def _kill(
    conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess[bytes], pgid: int | None
) -> None:
    """Kill the remote command's process group (from a second session) and close its session."""
    with contextlib.suppress(OSError, asyncssh.Error):
        proc.kill()  # honoured by sshd only with privilege separation and a non-root user
    if pgid is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await conn.run(f"kill -KILL -- -{pgid}", check=False, stdin=asyncssh.DEVNULL)
    proc.close()


def _output(
    host: Host, code: int | None, out: str, out_cut: bool, err: str, err_cut: bool, started: float
) -> dict[str, Any]:
    return {"host": host.name, **run_output(code, out, out_cut, err, err_cut, started)}


def _combined(hosts: list[Host], results: Iterable[dict[str, Any] | BaseException]) -> dict[str, Any]:
    """One output for a selector: per host its output or error; fails if any host failed."""
    per_host: dict[str, Any] = {}
    failed: list[RunError] = []
    for host, result in zip(hosts, results, strict=True):
        if isinstance(result, RunError):
            failed.append(result)
            per_host[host.name] = {"output": result.output, "error": result.as_error()}
        elif isinstance(result, BaseException):
            raise result
        else:
            per_host[host.name] = {"output": result, "error": None}
    output = {"hosts": per_host, "failed": sorted(n for n, r in per_host.items() if r["error"])}
    if failed:
        raise ActionFailed(
            f"failed on {len(failed)} of {len(hosts)} hosts: {', '.join(output['failed'])}",
            retryable=all(f.retryable for f in failed),
            output=output,
        )
    return output


def _target(doc: Mapping[str, Any], *, source: str) -> tuple[str | None, dict[str, Any] | None]:
    host, hosts = doc.get("host"), doc.get("hosts")
    if (host is None) == (hosts is None):
        raise CatalogError(
            "give either 'host' (an inventory name, e.g. \"{{ params.host }}\") or 'hosts' (a selector)",
            source=source,
            field="host",
        )
    if host is not None:
        if not isinstance(host, str) or not host.strip():
            raise CatalogError("must be a host name or a template", source=source, field="host")
        check_templates(host, source=source, field="host")
        return host, None
    if not isinstance(hosts, Mapping) or not hosts or set(hosts) - {"group", "labels"}:
        raise CatalogError("must be a selector: {group: ..., labels: {...}}", source=source, field="hosts")
    if "labels" in hosts and not isinstance(hosts["labels"], Mapping):
        raise CatalogError("must be a mapping of label to value", source=source, field="hosts.labels")
    check_templates(dict(hosts), source=source, field="hosts")
    return None, dict(hosts)


def resolve_hosts(
    inventory: Inventory, spec: list[Any] | str | dict[str, Any], context: Mapping[str, Any], *, field: str
) -> list[Host]:
    """The inventory hosts of ``spec``: a selector mapping (its strings templated), or a list (or a
    template rendering to one) of host names. A malformed spec, an unknown name or an empty selection
    fails (not retryable), naming ``field``; nothing is attempted on any host then."""
    try:
        if isinstance(spec, dict):
            return inventory.select(Selector.model_validate(_render(spec, context)))
        names = templating.render_value(spec, context, path=field)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ActionFailed(f"{field}: must name one or more inventory hosts", retryable=False)
        return [inventory.get(name) for name in dict.fromkeys(names)]
    except templating.TemplateError as exc:
        raise ActionFailed(f"{field}: {exc.message}") from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ActionFailed(f"{field}.{where}: {problem['msg']}", retryable=False) from None
    except UnknownHost as exc:
        raise ActionFailed(
            exc.message, retryable=False, problems=[{"field": field, "message": exc.message}]
        ) from None


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return templating.render(value, context)
    if isinstance(value, Mapping):
        return {str(k): _render(v, context) for k, v in value.items()}
    return value


def _interpreter(doc: Mapping[str, Any], *, source: str) -> list[str]:
    value = doc.get("interpreter", "sh")
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9_./-]+$", value):
        raise CatalogError(
            "must be a program name or path (sh, bash, /bin/sh)", source=source, field="interpreter"
        )
    return [value]


def _args(doc: Mapping[str, Any], *, source: str) -> list[str]:
    args = doc.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise CatalogError("must be a list of strings (one argument each)", source=source, field="args")
    return args


def _script(value: Any, *, source: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise CatalogError("must be the path of a script file", source=source, field="script")
    path = Path(value) if Path(value).is_absolute() else Path(source).parent / value
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}", source=source, field="script") from None


def bind_all(actions: Iterable[Any], runtime: SshRuntime) -> int:
    """Give every SSH and Ansible action of a catalogue the runtime; how many there were."""
    from whale_executor.actions.ansible import AnsibleAction

    count = 0
    for action in actions:
        if isinstance(action, SshAction | AnsibleAction):
            action.bind(runtime)
            count += 1
    return count
