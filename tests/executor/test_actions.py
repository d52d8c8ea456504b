"""Action kinds (shell, http, notify, python) run against real processes and a local HTTP stub."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from whale_executor.actions.base import ActionContext
from whale_executor.actions.http import HttpAction
from whale_executor.actions.notify import NotifyAction
from whale_executor.actions.shell import ShellAction
from whale_executor.builtin import echo, fail
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError, ParamsInvalid
from whale_executor.runner import Runner

from .exec_stub import Stub

CTX = ActionContext(request_id="r1", idempotency_key="k1", pool="test")


def shell(**doc: Any) -> ShellAction:
    return ShellAction({"kind": "shell", "name": "t.shell", **doc}, source="t.yaml")


async def test_shell_passes_each_templated_param_as_one_argv_item_without_a_shell() -> None:
    action = shell(argv=["printf", "%s|", "{{ params.a }}", "{{ params.b }}"], params={"type": "object"})
    out = await action.run(action.validate({"a": "x y; rm -rf /", "b": "$(id)"}), CTX)
    assert out["stdout"] == "x y; rm -rf /|$(id)|"
    assert out["exit_code"] == 0


async def test_shell_env_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_TEST_VISIBLE", "yes")
    monkeypatch.setenv("WHALE_TEST_HIDDEN", "secret")
    action = shell(argv=["/usr/bin/env"], env=["WHALE_TEST_VISIBLE"], set_env={"FIXED": "1"})
    out = await action.run({}, CTX)
    assert "WHALE_TEST_VISIBLE=yes" in out["stdout"]
    assert "FIXED=1" in out["stdout"]
    assert "WHALE_TEST_HIDDEN" not in out["stdout"]


async def test_shell_non_zero_exit_fails_with_exit_code_and_stderr(tmp_path: Path) -> None:
    action = shell(argv=["sh", "-c", "echo oops >&2; exit 3"], cwd=str(tmp_path))
    with pytest.raises(ActionFailed) as err:
        await action.run({}, CTX)
    assert err.value.output["exit_code"] == 3
    assert err.value.output["stderr"] == "oops\n"


async def test_shell_output_is_cut_at_the_limit() -> None:
    action = shell(argv=["sh", "-c", "yes | head -c 100000"], output_limit=1000)
    out = await action.run({}, CTX)
    assert len(out["stdout"]) == 1000
    assert out["stdout_truncated"] is True


async def test_shell_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    # the shell starts a background child that would outlive a plain kill of the parent
    action = shell(argv=["sh", "-c", f"sleep 60 & echo $! > {marker}; wait"], timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ActionTimedOut) as err:
        await action.run({}, CTX)
    assert time.monotonic() - started < 10
    assert err.value.output["killed"] is True
    child = int(marker.read_text())
    await asyncio.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running (a killed child whose parent died may stay a zombie until init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_shell_definition_errors_name_the_file_and_field() -> None:
    with pytest.raises(CatalogError, match=r"t.yaml: argv: must be a non-empty list"):
        shell(argv="rm -rf {{ params.x }}")
    with pytest.raises(CatalogError, match=r"argv\[0\]"):
        shell(argv=["{{ params.prog }}"])
    with pytest.raises(CatalogError, match=r"t.yaml: argv\[1\]: template syntax error"):
        shell(argv=["echo", "{{ params.x "])


def http(stub: Stub, **doc: Any) -> HttpAction:
    base = {"kind": "http", "name": "t.http", "request": {"method": "POST", "url": stub.url + "/tickets"}}
    return HttpAction({**base, **doc}, source="h.yaml")


async def test_http_renders_request_and_adds_auth_from_a_secret(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHALE_TEST_TOKEN", "s3cr3t-token")
    stub.route("POST", "/tickets", (201, {"id": 7, "echo": "s3cr3t-token"}))
    action = http(
        stub,
        request={
            "method": "POST",
            "url": stub.url + "/tickets",
            "headers": {"X-Team": "{{ params.team }}"},
            "query": {"prio": "{{ params.prio }}"},
            "json": {"title": "{{ params.title }}", "prio": "{{ params.prio }}"},
        },
        auth={"bearer": "env:WHALE_TEST_TOKEN"},
    )
    out = await action.run(action.validate({"title": "disk full", "prio": 2, "team": "ops"}), CTX)
    seen = stub.requests("/tickets")[0]
    assert seen.body == {"title": "disk full", "prio": 2}
    assert seen.query == {"prio": "2"}
    assert seen.headers["authorization"] == "Bearer s3cr3t-token"
    assert seen.headers["x-team"] == "ops"
    assert out["status"] == 201
    assert out["body"] == {"id": 7, "echo": "***"}  # a secret echoed by the API is scrubbed


async def test_http_retries_5xx_with_growing_backoff_then_succeeds(stub: Stub) -> None:
    stub.route("POST", "/tickets", (503, {}), (502, {}), (200, {"ok": True}))
    action = http(stub, retries={"count": 3, "backoff": 0.2})
    out = await action.run({}, CTX)
    assert out["attempts"] == 3
    times = [s.at for s in stub.requests("/tickets")]
    assert times[1] - times[0] >= 0.2
    assert times[2] - times[1] >= 0.4


async def test_http_gives_up_after_retries_with_a_retryable_failure(stub: Stub) -> None:
    stub.route("POST", "/tickets", (500, {"error": "down"}))
    action = http(stub, retries={"count": 1, "backoff": 0.01})
    with pytest.raises(ActionFailed) as err:
        await action.run({}, CTX)
    assert err.value.retryable is True
    assert err.value.output["status"] == 500
    assert len(stub.requests("/tickets")) == 2


async def test_http_4xx_is_not_retried_and_not_retryable(stub: Stub) -> None:
    stub.route("POST", "/tickets", (404, {}))
    action = http(stub, retries={"count": 3, "backoff": 0.01})
    with pytest.raises(ActionFailed) as err:
        await action.run({}, CTX)
    assert err.value.retryable is False
    assert len(stub.requests("/tickets")) == 1


async def test_http_accepted_statuses_and_response_size_limit(stub: Stub) -> None:
    stub.route("POST", "/tickets", (409, {"text": "x" * 5000}))
    action = http(stub, accept=[200, 409], response_limit=100)
    out = await action.run({}, CTX)
    assert out["status"] == 409
    assert out["truncated"] is True and len(out["body"]) == 100


async def test_http_timeout_is_retried_then_timed_out(stub: Stub) -> None:
    stub.route("POST", "/tickets", (200, {}), delay=1.0)
    action = http(stub, timeout=0.2, retries={"count": 1, "backoff": 0.01})
    with pytest.raises(ActionTimedOut):
        await action.run({}, CTX)
    for _ in range(100):  # the stub's thread may record the retried request after the client gave up
        if len(stub.requests("/tickets")) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(stub.requests("/tickets")) == 2


def test_http_auth_must_be_a_secret_reference_never_inline() -> None:
    base = {"kind": "http", "name": "t", "request": {"url": "http://x"}}
    with pytest.raises(CatalogError, match=r"h.yaml: auth.bearer: must be a secret reference"):
        HttpAction({**base, "auth": {"bearer": "abc123"}}, source="h.yaml")
    with pytest.raises(CatalogError, match=r"auth.basic.password"):
        HttpAction({**base, "auth": {"basic": {"username": "u", "password": "pw"}}}, source="h.yaml")


async def test_http_missing_secret_fails_naming_the_reference_only(stub: Stub) -> None:
    action = http(stub, auth={"bearer": "env:WHALE_TEST_NOT_SET_ANYWHERE"})
    with pytest.raises(ActionFailed, match="env:WHALE_TEST_NOT_SET_ANYWHERE is not set"):
        await action.run({}, CTX)


async def test_notify_wecom_posts_markdown_to_the_robot(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_TEST_WECOM", stub.url + "/cgi-bin/webhook/send?key=robot-key-123")
    stub.route("POST", "/cgi-bin/webhook/send", (200, {"errcode": 0, "errmsg": "ok"}))
    action = NotifyAction(
        {
            "kind": "notify",
            "name": "n",
            "channel": "wecom",
            "webhook": "env:WHALE_TEST_WECOM",
            "message": "## {{ params.title }}\n> host: {{ params.host }}",
        },
        source="n.yaml",
    )
    out = await action.run(action.validate({"title": "Disk full", "host": "db1"}), CTX)
    seen = stub.requests("/cgi-bin/webhook/send")[0]
    assert seen.body == {"msgtype": "markdown", "markdown": {"content": "## Disk full\n> host: db1"}}
    assert seen.query == {"key": "robot-key-123"}
    assert "robot-key-123" not in repr(out)


async def test_notify_wecom_errcode_fails_without_leaking_the_key(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHALE_TEST_WECOM", stub.url + "/cgi-bin/webhook/send?key=robot-key-123")
    stub.route("POST", "/cgi-bin/webhook/send", (200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    action = NotifyAction(
        {
            "kind": "notify",
            "name": "n",
            "channel": "wecom",
            "webhook": "env:WHALE_TEST_WECOM",
            "message": "hi",
        },
        source="n.yaml",
    )
    with pytest.raises(ActionFailed) as err:
        await action.run({}, CTX)
    assert "93000" in err.value.message
    assert "robot-key-123" not in err.value.message + repr(err.value.output)


async def test_notify_slack_posts_text(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_TEST_SLACK", stub.url + "/services/T/B/X")
    stub.route("POST", "/services/T/B/X", (200, b"ok"))
    action = NotifyAction(
        {
            "kind": "notify",
            "name": "n",
            "channel": "slack",
            "webhook": "env:WHALE_TEST_SLACK",
            "message": "*{{ params.t }}*",
        },
        source="n.yaml",
    )
    await action.run({"t": "hello"}, CTX)
    assert stub.requests("/services/T/B/X")[0].body == {"text": "*hello*"}


def test_python_action_params_are_validated_with_field_names() -> None:
    with pytest.raises(ParamsInvalid) as err:
        echo.validate({})
    assert err.value.problems == [{"field": "message", "message": "Field required"}]


async def test_runner_turns_every_ending_into_an_outcome() -> None:
    runner = Runner(pool="test", concurrency=2)
    ok = await runner.execute(echo, {"message": [1, 2]}, CTX)
    assert ok.type == "whale.action.succeeded" and ok.output == {"message": [1, 2]}
    bad = await runner.execute(echo, {"nope": 1}, CTX)
    assert bad.type == "whale.action.failed" and bad.error is not None
    assert bad.error["problems"][0]["field"] == "message"
    failed = await runner.execute(fail, {"message": "boom", "retryable": True}, CTX)
    assert failed.type == "whale.action.failed" and failed.error == {"message": "boom", "retryable": True}
    slow = shell(argv=["sleep", "5"], timeout=0.2)
    timed = await runner.execute(slow, {}, CTX)
    assert (
        timed.type == "whale.action.timed_out"
        and timed.error is not None
        and timed.error["retryable"] is True
    )


async def test_secrets_resolve_from_env_and_files_and_errors_never_hold_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whale_executor import secrets
    from whale_executor.errors import SecretError

    key = tmp_path / "key"
    key.write_text("file-secret\n")
    monkeypatch.setenv("WHALE_TEST_SECRET", "env-secret")
    assert secrets.resolve("env:WHALE_TEST_SECRET") == "env-secret"
    assert secrets.resolve(f"file:{key}") == "file-secret"
    with pytest.raises(SecretError, match="cannot be read"):
        secrets.resolve(f"file:{tmp_path}/missing")
    monkeypatch.setenv("WHALE_TEST_SECRET", "")
    with pytest.raises(SecretError, match="env:WHALE_TEST_UNSET_SECRET is not set"):
        secrets.resolve("env:WHALE_TEST_UNSET_SECRET")
    with pytest.raises(CatalogError, match="must name an absolute path"):
        secrets.check_ref("file:relative", source="s.yaml", field="auth.bearer")
    assert secrets.scrub("token env-secret here", ["env-secret"]) == "token *** here"
