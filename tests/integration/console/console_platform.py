"""The real stack behind the console's browser tests: the event center with sign-in on (dev mode
off), dedupe, indexer, to-do stage, rule engine, an executor pool of this session and the console,
each as its own ``whale run`` process; people's personal tokens on the real ``whale.tokens`` topic.

The rules directory holds rules of this session's own: an ``<prefix>.alert`` event starts
``core.fail``, so its chain has three hops (the alert, the action request, the failed result) and a
failure to highlight; an ``<prefix>.broken`` event fails to render (a field it does not have), so
the rule engine dead-letters it. Events of ``<prefix>.unhandled`` match no rule and become to-do
items. The executor's catalogue directory holds a workflow waiting for an approval (any operator,
with a reason) before its next task; :meth:`ConsolePlatform.approval_rule` saves the rule starting
it on ``<prefix>.approve`` once the catalogue knows the workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from tests.ports import free_port
from whale import tokens as personal
from whale import topics
from whale.authz import Role
from whale.compacted import put
from whale.producer import EventProducer
from whale.settings import WhaleSettings

ROOT = Path(__file__).resolve().parents[3]
SESSION = uuid.uuid4().hex[:8]
POOL = f"console-{SESSION}"
PREFIX = f"console.it{SESSION}"
SERVICES = ("event-center", "dedupe", "indexer", "todo", "rule-engine", "executor", "console")
RULE = f"""\
id: console-it-{SESSION}
description: the console's browser test - its alert fails on purpose
match:
  all:
    - {{field: type, equals: {PREFIX}.alert}}
target: {{kind: action, name: core.fail, pool: {POOL}}}
params:
  message: "disk still full on {{{{ subject }}}}"
"""

BROKEN = f"""\
id: console-it-broken-{SESSION}
description: the console's browser test - its params never render, so its events are dead letters
match:
  all:
    - {{field: type, equals: {PREFIX}.broken}}
target: {{kind: action, name: core.fail, pool: {POOL}}}
params:
  message: "{{{{ data.nope{SESSION} }}}}"
"""
WORKFLOW_NAME = f"console.it{SESSION}.restart"
WORKFLOW = f"""\
kind: workflow
name: {WORKFLOW_NAME}
params: {{type: object, properties: {{host: {{type: string}}}}, required: [host]}}
timeout: 600
tasks:
  gate:
    type: approval
    message: "Restart {{{{ input.host }}}}?"
    timeout: 600
    approvers: {{role: operator}}
    response_schema:
      type: object
      required: [reason]
      properties: {{reason: {{type: string, minLength: 3, title: Reason}}}}
    next: [{{on: success, do: go}}]
  go:
    action: core.echo
    input: {{message: "{{{{ tasks.gate.output.by }}}}: {{{{ tasks.gate.output.response.reason }}}}"}}
output: {{said: "{{{{ tasks.go.output.message }}}}"}}
"""


def make_tokens(settings: WhaleSettings) -> dict[str, str]:
    """A personal token per role (1 day), written to whale.tokens: role name -> token."""
    made: dict[str, str] = {}
    records = []
    for role in (Role.viewer, Role.operator, Role.author):
        token_id, token = personal.new_personal_token()
        name = f"it-{role.name}-{SESSION}"
        records.append(
            (token_id, personal.new_record(token, token_id, name=name, role=role, ttl=timedelta(days=1)))
        )
        made[role.name] = token

    async def write() -> None:
        producer = EventProducer(settings, client_id="whale-console-tests")
        try:
            for token_id, record in records:
                await put(producer, topics.TOKENS, token_id, personal.to_event(record))
        finally:
            await asyncio.to_thread(producer.close)

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API may be running a loop on this thread
        pool.submit(asyncio.run, write()).result()
    return made


class ConsolePlatform:
    def __init__(self, settings: WhaleSettings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        rules = workdir / "rules"
        rules.mkdir(parents=True, exist_ok=True)
        (rules / "console-it.yaml").write_text(RULE)
        (rules / "console-it-broken.yaml").write_text(BROKEN)
        catalog = workdir / "catalog"
        catalog.mkdir(parents=True, exist_ok=True)
        (catalog / "console-it-workflow.yaml").write_text(WORKFLOW)
        self.ports = {name: free_port() for name in SERVICES}
        self.event_center = f"http://127.0.0.1:{self.ports['event-center']}"
        self.console = f"http://127.0.0.1:{self.ports['console']}"
        self.tokens: dict[str, str] = {}
        self.env = {
            **os.environ,
            "WHALE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "WHALE_ES_URL": settings.es_url,
            "WHALE_DEV_MODE": "false",
            "WHALE_LOG_FORMAT": "json",
            "WHALE_RULES_DIR": str(rules),
            "WHALE_EVENT_CENTER_PORT": str(self.ports["event-center"]),
            "WHALE_EVENT_CENTER_DEDUPE_HEALTH_PORT": str(self.ports["dedupe"]),
            "WHALE_EVENT_CENTER_INDEXER_HEALTH_PORT": str(self.ports["indexer"]),
            "WHALE_RULE_ENGINE_APP_ID": f"whale-console-it-{SESSION}",
            "WHALE_RULE_ENGINE_PORT": str(self.ports["rule-engine"]),
            "WHALE_EXECUTOR_POOL": POOL,
            "WHALE_EXECUTOR_CATALOG_DIRS": json.dumps([str(catalog)]),
            "WHALE_EXECUTOR_HEALTH_PORT": str(self.ports["executor"]),
            "WHALE_TODO_GROUP": f"whale-console-it-todo-{SESSION}",
            "WHALE_TODO_SOURCE": f"whale/todo/console-it-{SESSION}",
            "WHALE_TODO_HEALTH_PORT": str(self.ports["todo"]),
            "WHALE_CONSOLE_PORT": str(self.ports["console"]),
            "WHALE_CONSOLE_API_URL": self.event_center,
            "WHALE_CONSOLE_SESSION_SECRET": uuid.uuid4().hex,
        }

    def start(self, name: str) -> None:
        log = self.logs.get(name) or open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        self.logs[name] = log
        args = ["--pool", POOL] if name == "executor" else []
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "whale", "run", name, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
        )

    def start_all(self) -> None:
        self.tokens = make_tokens(self.settings)
        for name in SERVICES:
            self.start(name)
        for name in SERVICES:
            self.wait_http(f"http://127.0.0.1:{self.ports[name]}/readyz", name)
        for role, token in self.tokens.items():  # the event center follows whale.tokens: wait for ours
            self.wait_until(lambda t=token: self.api("GET", "/whoami", t).status_code == 200, f"{role} token")
        for kind in ("alert", "unhandled", "approve", "broken"):
            schema = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": f"{PREFIX}.{kind}",
                "type": "object",
            }
            answer = self.api("PUT", f"/schemas/{PREFIX}.{kind}", self.tokens["author"], json=schema)
            assert answer.status_code < 400, answer.text

    def approval_rule(self) -> str:
        """Save the rule starting the approval workflow (once the catalogue knows it): its id."""
        rule_id = f"console-it-approve-{SESSION}"
        rule = {
            "id": rule_id,
            "description": "the console's browser test - a workflow waiting for an approval",
            "match": {"all": [{"field": "type", "equals": f"{PREFIX}.approve"}]},
            "target": {"kind": "workflow", "name": WORKFLOW_NAME, "pool": POOL},
            "params": {"host": "{{ subject }}"},
        }

        def saved() -> bool:
            answer = self.api("PUT", f"/rules/{rule_id}", self.tokens["author"], json=rule)
            return answer.status_code < 300

        self.wait_until(saved, "the approval rule saved (the catalogue knows the workflow)")
        return rule_id

    def api(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.event_center}{path}", headers=headers, timeout=30, **kwargs)

    def post_event(self, kind: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
        """Post an event as the operator until ingest accepts it (a new schema takes a moment)."""
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": f"console-it/{SESSION}",
                 "type": f"{PREFIX}.{kind}", "subject": subject, "data": data}  # fmt: skip
        headers = {"Content-Type": "application/cloudevents+json"}
        last = ""
        for _ in range(60):
            answer = self.api(
                "POST", "/events", self.tokens["operator"], content=json.dumps(event), headers=headers
            )
            if answer.status_code == 202:
                return event
            last = answer.text
            time.sleep(1)
        raise AssertionError(f"the event center did not accept the event: {last}")

    def unhandled_todo(self, subject: str, data: dict[str, Any]) -> dict[str, Any]:
        """Post an ``<prefix>.unhandled`` event about ``subject`` and wait for the to-do it opens."""
        self.post_event("unhandled", subject, data)

        def opened() -> Any:
            found = self.api("GET", "/todos", self.tokens["viewer"], params={"type": f"{PREFIX}.unhandled"})
            items = [i for i in found.json().get("todos", []) if i.get("subject") == subject]
            return items[0] if found.status_code == 200 and items else None

        found: dict[str, Any] = self.wait_until(opened, "the to-do of the unhandled event")
        return found

    def wait_until(self, check: Any, what: str, timeout: float = 180.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(1)
        raise AssertionError(
            f"{what}: not seen within {timeout}s\n" + "\n".join(self.tail(n) for n in SERVICES)
        )

    def wait_http(self, url: str, name: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{name} not ready at {url} within {timeout}s:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- {name}\n" + "\n".join(text)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self.logs.values():
            log.close()
