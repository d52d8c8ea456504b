"""Shell actions: an argv list run without a shell, each templated item its own argument.

.. code-block:: yaml

    kind: shell
    name: disk.usage
    params: {type: object, properties: {path: {type: string}}, required: [path]}
    argv: [du, -s, "{{ params.path }}"]
    cwd: /tmp
    env: [PATH, LANG]          # names passed through from the executor's environment (allowlist)
    set_env: {LC_ALL: C}       # fixed values (templated)
    timeout: 30                # the whole process group is killed at the deadline
    output_limit: 65536        # characters of stdout and of stderr kept in the result
    success_codes: [0]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from typing import Any, Protocol

from whale.rules import templating
from whale_executor.actions.base import ActionContext, SchemaParams, truncate
from whale_executor.actions.yamlspec import check_keys, check_templates, integer, number
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError


class ShellAction:
    kind = "shell"

    def __init__(self, doc: Mapping[str, Any], *, source: str) -> None:
        check_keys(doc, {"argv", "cwd", "env", "set_env", "output_limit", "success_codes"}, source=source)
        self.name = str(doc["name"])
        self.description = str(doc.get("description", ""))
        self.idempotent = bool(doc.get("idempotent", False))
        self.timeout = number(doc, "timeout", 60.0, source=source, minimum=0.001)
        self._params = SchemaParams(doc.get("params"), source=source)
        argv = doc.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise CatalogError(
                "must be a non-empty list of strings (one argument each; no shell string)",
                source=source,
                field="argv",
            )
        if "{{" in argv[0] or "{%" in argv[0]:
            raise CatalogError("the program (argv[0]) must not be templated", source=source, field="argv[0]")
        check_templates(argv, source=source, field="argv")
        self.argv: list[str] = argv
        cwd = doc.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise CatalogError("must be a path", source=source, field="cwd")
        self.cwd: str | None = cwd
        env = doc.get("env", [])
        if not isinstance(env, list) or not all(isinstance(n, str) for n in env):
            raise CatalogError("must be a list of environment variable names", source=source, field="env")
        self.env_allow: list[str] = env
        set_env = doc.get("set_env", {})
        if not isinstance(set_env, Mapping):
            raise CatalogError("must be a mapping", source=source, field="set_env")
        check_templates(dict(set_env), source=source, field="set_env")
        self.set_env = {str(k): str(v) for k, v in set_env.items()}
        self.output_limit = integer(doc, "output_limit", 64 * 1024, source=source)
        codes = doc.get("success_codes", [0])
        if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
            raise CatalogError("must be a list of exit codes", source=source, field="success_codes")
        self.success_codes: list[int] = codes

    @property
    def params_schema(self) -> dict[str, Any]:
        return self._params.schema

    def validate(self, params: Any) -> dict[str, Any]:
        return self._params.validate(params)

    def command(self, params: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        """The argv (each item rendered to exactly one argument) and the environment."""
        context = {"params": params}
        argv = [self.argv[0]]
        for i, item in enumerate(self.argv[1:], start=1):
            try:
                argv.append(templating.render(item, context))
            except templating.TemplateError as exc:
                raise ActionFailed(f"argv[{i}]: {exc.message}") from None
        env = {name: os.environ[name] for name in self.env_allow if name in os.environ}
        for key, value in self.set_env.items():
            try:
                env[key] = templating.render(value, context)
            except templating.TemplateError as exc:
                raise ActionFailed(f"set_env.{key}: {exc.message}") from None
        return argv, env

    async def run(self, params: Any, ctx: ActionContext) -> Any:
        argv, env = self.command(params)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            raise ActionFailed(f"cannot start {argv[0]!r}: {exc.strerror}") from None
        assert proc.stdout is not None and proc.stderr is not None
        readers = asyncio.gather(
            read_limited(proc.stdout, self.output_limit), read_limited(proc.stderr, self.output_limit)
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout=self.timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            (out, out_cut), (err, err_cut) = await collect(readers)
            output = self._output(None, out, out_cut, err, err_cut, started)
            output["killed"] = True
            raise ActionTimedOut(
                f"{argv[0]} did not finish within {self.timeout:g}s; its process group was killed",
                output=output,
            ) from None
        except BaseException:
            _kill_group(proc.pid)
            readers.cancel()
            raise
        _kill_group(proc.pid)  # leftovers of the group (background children) go too
        (out, out_cut), (err, err_cut) = await collect(readers)
        output = self._output(proc.returncode, out, out_cut, err, err_cut, started)
        if proc.returncode not in self.success_codes:
            raise ActionFailed(f"{argv[0]} exited with code {proc.returncode}", output=output)
        return output

    def _output(
        self, code: int | None, out: str, out_cut: bool, err: str, err_cut: bool, started: float
    ) -> dict[str, Any]:
        return run_output(code, out, out_cut, err, err_cut, started)


def run_output(
    code: int | None, out: str, out_cut: bool, err: str, err_cut: bool, started: float
) -> dict[str, Any]:
    """The output of a command run (local or remote): exit code, captured streams, elapsed time."""
    return {
        "exit_code": code,
        "stdout": out,
        "stderr": err,
        "stdout_truncated": out_cut,
        "stderr_truncated": err_cut,
        "elapsed_ms": round((time.monotonic() - started) * 1000),
    }


class Readable(Protocol):
    """A byte stream (an asyncio pipe, an SSH channel's stdout)."""

    async def read(self, n: int = ..., /) -> bytes: ...


async def read_limited(stream: Readable, limit: int) -> tuple[str, bool]:
    """Read a stream to its end, keeping the first ``limit`` characters (the rest is drained)."""
    kept = bytearray()
    cut = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept.extend(chunk[:room])
        if len(chunk) > room:
            cut = True
    text, more = truncate(kept.decode("utf-8", "replace"), limit)
    return text, cut or more


async def collect(
    readers: asyncio.Future[tuple[tuple[str, bool], tuple[str, bool]]],
) -> tuple[tuple[str, bool], tuple[str, bool]]:
    """The captured streams; a pipe held open by an escaped grandchild is given up after 2 s."""
    try:
        return await asyncio.wait_for(readers, timeout=2.0)
    except TimeoutError:
        return ("", True), ("", True)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
