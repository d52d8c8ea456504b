"""``whale up`` (what ``make run`` calls): the whole platform on this machine until Ctrl-C.

Starts Kafka and Elasticsearch (unless ``WHALE_KAFKA_BOOTSTRAP`` / ``WHALE_ES_URL`` point at the
user's clusters), ensures the topics, starts every installed service as its own process with its
log lines prefixed by its name, loads the shipped scenarios (rules, actions and workflows, event
schemas; ``--no-examples`` skips them), prints the URLs and a first command to try, and on Ctrl-C
stops everything it started. Every default below is only a default: an environment variable the
user set wins.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from whale.admin import ensure_topics
from whale.cli.run import services
from whale.cli.shutdown import GRACE, kill_infra, stop_services, summary, take_ctrl_c
from whale.errors import InfraError
from whale.processes import default_ports
from whale.resources import scenarios_dir
from whale.settings import RULES_DIR_NAMES, WhaleSettings

if TYPE_CHECKING:
    from whale.infra.sshd import LocalSshd
    from whale.infra.stack import StackStatus

# Arguments each service gets under `whale up`; services not listed start with none.
SERVICE_ARGS: dict[str, list[str]] = {"executor": ["--pool", "default"]}
DEMO_DIR = Path("/tmp/whale-demo")  # noqa: S108 - the stand-in hosts' log directories of the demo
DEMO_HOSTS = ("vm-web-01", "db-01")  # the inventory of the demo: the local sshd under each name
ROBOT_PORT = 8099  # the WeCom robot stand-in's port


def demo_dir(env: dict[str, str]) -> Path:
    """Where the demo's stand-in hosts live: ``WHALE_EXAMPLE_DEMO_DIR``, else ``/tmp/whale-demo``."""
    return Path(env.get("WHALE_EXAMPLE_DEMO_DIR") or DEMO_DIR)


def robot_port(env: dict[str, str]) -> int:
    """The robot stand-in's port: ``WHALE_EXAMPLE_ROBOT_PORT``, else 8099."""
    return int(env.get("WHALE_EXAMPLE_ROBOT_PORT") or ROBOT_PORT)


DEV_MODE_BANNER = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! DEV MODE (WHALE_DEV_MODE=true): AUTHENTICATION IS OFF on every service.       !!
!! Every request is the admin 'dev-mode': events, rules, schemas, subscriptions. !!
!! For this machine only. Run with WHALE_DEV_MODE=false to require identities,   !!
!! then `whale tokens create --name me --role admin` and export WHALE_TOKEN.     !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("up", help="start the whole platform (infra, topics, every service) until Ctrl-C")
    parser.add_argument("--no-services", action="store_true", help="only infrastructure and topics")
    parser.add_argument("--no-examples", action="store_true", help="do not load the shipped scenarios")
    parser.add_argument(
        "--examples",
        type=Path,
        default=None,
        help="directory of scenarios to load (default $WHALE_EXAMPLES_DIR, else the shipped ones)",
    )
    parser.add_argument("--keep-infra", action="store_true", help="leave Kafka/Elasticsearch running on exit")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=GRACE,
        metavar="SECONDS",
        help=f"on Ctrl-C, how long the services may take to stop before they are killed (default {GRACE:g})",
    )
    parser.set_defaults(handler=_up)


def _pump(name: str, stream: IO[bytes], width: int) -> None:
    prefix = f"{name:<{width}} | ".encode()
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


def examples_dir(args: argparse.Namespace, env: dict[str, str]) -> Path:
    """The scenarios ``whale up`` loads: ``--examples``, else ``WHALE_EXAMPLES_DIR``, else the shipped ones."""
    if args.examples is not None:
        return Path(args.examples)
    if env.get("WHALE_EXAMPLES_DIR"):
        return Path(env["WHALE_EXAMPLES_DIR"])
    return scenarios_dir()


def example_env(env: dict[str, str], scenarios: Path) -> dict[str, str]:
    """Defaults pointing the services at the shipped scenarios (the user's own settings win)."""
    out = dict(env)
    for name, value in default_ports().items():
        out.setdefault(name, value)
    if scenarios.is_dir():
        if not any(out.get(name) for name in RULES_DIR_NAMES):
            out["WHALE_RULES_DIR"] = str(scenarios / "rules")
        out.setdefault("WHALE_EXECUTOR_CATALOG_DIRS", json.dumps([str(scenarios / "catalog")]))
        out.setdefault(
            "WHALE_EXAMPLE_WECOM_WEBHOOK", f"http://127.0.0.1:{robot_port(env)}/cgi-bin/webhook/send?key=demo"
        )
    return out


DEMO_CAPACITY = 90_000  # bytes: the stand-in disk of vm-web-01 (its logs fill it past 85%)


def demo_facts(base: Path = DEMO_DIR) -> dict[str, dict[str, Any]]:
    """What the demo inventory knows about its hosts (enrichment gives the disk rule these facts)."""
    return {
        "vm-web-01": {"log_dir": str(base / "vm-web-01" / "log"), "capacity_bytes": DEMO_CAPACITY},
        "db-01": {"kmsg": str(base / "db-01" / "kmsg.log")},
    }


def prepare_demo_hosts(base: Path = DEMO_DIR) -> None:
    """The stand-in log directory of vm-web-01 (old and fresh logs) and kernel log of db-01."""
    logs = base / "vm-web-01" / "log"
    logs.mkdir(parents=True, exist_ok=True)
    old = time.time() - 30 * 86400
    for i in range(60):
        path = logs / f"app-{i:02d}.log.gz"
        path.write_bytes(b"\0" * 1000)
        os.utime(path, (old, old))
    for i in range(20):
        (logs / f"app-today-{i:02d}.log").write_bytes(b"\0" * 1000)
    kmsg = base / "db-01" / "kmsg.log"
    kmsg.parent.mkdir(parents=True, exist_ok=True)
    kmsg.write_text("[  12.3] EXT4-fs error (device sda1): ext4_find_entry: reading directory lblock 0\n")


class _Robot(BaseHTTPRequestHandler):
    """Stands in for the WeCom group robot: prints what it would have posted to the chat."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            text = json.loads(body).get("markdown", {}).get("content", "")
        except (ValueError, AttributeError):
            text = body.decode("utf-8", "replace")
        for line in str(text).splitlines():
            sys.stdout.write(f"{'robot':<12} | {line}\n")
        sys.stdout.flush()
        answer = b'{"errcode": 0, "errmsg": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def _publish_inventory(env: dict[str, str]) -> None:
    """The demo hosts on ``whale.inventory`` too (what ``whale hosts list`` and enrichment read)."""
    paths = json.loads(env["WHALE_EXECUTOR_INVENTORY"])
    args = [arg for path in paths for arg in ("--inventory", path)]
    cmd = [sys.executable, "-m", "whale", "hosts", "publish", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=120)
    print(f"demo inventory: {(done.stdout or done.stderr).strip()[-300:]}", flush=True)


def _load_examples(env: dict[str, str], scenarios: Path) -> None:
    """Wait for the event center, then register the scenarios' event schemas."""
    from whale.cli.events import register_schemas

    url = f"http://127.0.0.1:{env['WHALE_EVENT_CENTER_PORT']}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        print("the event center did not become ready: example schemas not registered", flush=True)
        return
    for type_name, status, detail in register_schemas(url, str(scenarios / "schemas")):
        print(f"example schema {type_name}: {status} {detail}", flush=True)
    _banner(env, scenarios)


def _banner(env: dict[str, str], scenarios: Path) -> None:
    center = f"http://127.0.0.1:{env['WHALE_EVENT_CENTER_PORT']}"
    adapters = f"http://127.0.0.1:{env['WHALE_ADAPTERS_PORT']}"
    console = f"http://127.0.0.1:{env['WHALE_CONSOLE_PORT']}"
    chat = f"http://127.0.0.1:{env['WHALE_CHAT_PORT']}"
    payloads = scenarios / "payloads"
    logs = demo_dir(env) / "vm-web-01" / "log"
    print(
        f"""
Whale is ready.
  console        {console}   (to-dos, events, traces, rules, dead letters)
  event center   {center}   (API docs {center}/docs; events, /traces/<id>, /schemas, /rules, /todos)
  adapters       {adapters}   (POST /alertmanager, /webhooks/<name>)
  robot          the WeCom robot stand-in prints its messages below as `robot | ...`
  chat           {chat}   (POST /slack, /wecom: 404 until WHALE_CHAT_SLACK_SIGNING_SECRET or WHALE_CHAT_WECOM_* are set)
First thing to try (node-exporter's disk alert for vm-web-01; the inventory says its logs are in {logs}):
  curl -s -XPOST {adapters}/alertmanager -H 'Content-Type: application/json' -d @{payloads}/disk-alert.json
Then:
  whale events search --type whale.workflow.completed      # the result, and its correlation id
  whale events trace <correlationid>                        # the whole chain in causal order
  whale events send {payloads}/kernel-error.json            # dmesg cleanup
  whale events send {payloads}/backup-failed.json           # nobody handles it: a to-do
  whale todos list
""",
        flush=True,
    )


def _up(args: argparse.Namespace) -> int:
    from whale.infra import stack

    take_ctrl_c()  # also when started with SIGINT ignored (a background job of a script)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    pumps: list[threading.Thread] = []
    robot: ThreadingHTTPServer | None = None
    demo_sshd: LocalSshd | None = None
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops it too
        signal.signal(sig, lambda *_: stopping.set())
    settings = WhaleSettings()
    status = stack.up(settings)  # on Ctrl-C it stops what it started itself
    try:  # from here on, Ctrl-C (KeyboardInterrupt) stops whatever was started
        print(status.describe() if hasattr(status, "describe") else status, flush=True)
        stack_settings = status.settings  # where the stack really is (WHALE_INFRA_*_PORT may move it)
        for report in ensure_topics(stack_settings):
            print(f"topic {report.name}: {report.action}", flush=True)
        if not args.no_services:
            env = {**os.environ}
            env.setdefault("WHALE_KAFKA_BOOTSTRAP", stack_settings.kafka_bootstrap)
            env.setdefault("WHALE_ES_URL", stack_settings.es_url)
            env.setdefault("WHALE_DEV_MODE", "true")
            if env["WHALE_DEV_MODE"].lower() == "true":
                print(DEV_MODE_BANNER, flush=True)
            scenarios = examples_dir(args, env)
            examples = not args.no_examples and scenarios.is_dir()
            if examples:
                env = example_env(env, scenarios)
                prepare_demo_hosts(demo_dir(env))
                from whale.infra.sshd import start_demo_hosts

                demo_sshd = start_demo_hosts(
                    demo_dir(env) / "sshd", DEMO_HOSTS, env, demo_facts(demo_dir(env))
                )
                if demo_sshd is not None:
                    threading.Thread(target=_publish_inventory, args=(env,), daemon=True).start()
                if "WHALE_EXAMPLE_WECOM_WEBHOOK" not in os.environ:
                    robot = ThreadingHTTPServer(("127.0.0.1", robot_port(env)), _Robot)
                    threading.Thread(target=robot.serve_forever, daemon=True).start()
            else:
                for name, value in default_ports().items():
                    env.setdefault(name, value)
            env.setdefault("WHALE_CONSOLE_API_URL", f"http://127.0.0.1:{env['WHALE_EVENT_CENTER_PORT']}")
            env.setdefault(
                "WHALE_CHAT_EVENT_CENTER_URL", f"http://127.0.0.1:{env['WHALE_EVENT_CENTER_PORT']}"
            )
            names = sorted(services())
            width = max((len(n) for n in names), default=8)
            for name in names:
                cmd = [sys.executable, "-m", "whale", "run", name, *SERVICE_ARGS.get(name, [])]
                # a process group of its own: stopped (and, past the deadline, killed) as a whole
                # (stdin: a background group reading the terminal would be stopped by SIGTTIN)
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=env,
                    process_group=0,
                )
                procs[name] = proc
                assert proc.stdout is not None
                pumps.append(threading.Thread(target=_pump, args=(name, proc.stdout, width), daemon=True))
                pumps[-1].start()
            if examples:
                threading.Thread(target=_load_examples, args=(env, scenarios), daemon=True).start()
            else:
                threading.Thread(target=_banner, args=(env, scenarios), daemon=True).start()
        print("Whale is starting. Press Ctrl-C to stop.", flush=True)
        while not stopping.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}", flush=True)
                    stopping.set()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        code = _stop(args, settings, status, procs, pumps, robot, demo_sshd)
    return code


def _stop(
    args: argparse.Namespace,
    settings: WhaleSettings,
    status: StackStatus,
    procs: dict[str, subprocess.Popen[bytes]],
    pumps: list[threading.Thread],
    robot: ThreadingHTTPServer | None,
    demo_sshd: LocalSshd | None,
) -> int:
    """Stop what ``_up`` started: the services (together, bounded), the demo's stand-ins, then the
    Kafka and Elasticsearch it started. A second Ctrl-C (or SIGTERM) kills what is still stopping."""
    from whale.infra import stack

    began = time.monotonic()
    hurry = threading.Event()
    infra = [name for name in status.started if not args.keep_infra]

    def again(*_: object) -> None:  # prints nothing: it may interrupt a print
        hurry.set()
        kill_infra(settings, infra)  # ends a stack.down under way at once

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, again)
    if procs:
        print(f"stopping {len(procs)} services (Ctrl-C again to kill them now)", flush=True)
        ended = stop_services(procs, args.stop_timeout, hurry=hurry, say=lambda line: print(line, flush=True))
        print(summary(ended, time.monotonic() - began), flush=True)
    joined = time.monotonic() + 2.0
    for pump in pumps:  # the services' last lines (their pipes are closed now)
        pump.join(timeout=max(0.0, joined - time.monotonic()))
    if robot is not None:
        robot.shutdown()
        robot.server_close()
    if demo_sshd is not None:
        demo_sshd.stop()
    code = 0
    if infra:
        if hurry.is_set():
            kill_infra(settings, infra)
        try:
            stack.down(settings, components=infra, progress=lambda line: print(line, flush=True))
        except InfraError as exc:
            print(f"stopping Kafka/Elasticsearch: {exc}", flush=True)
            code = 1
    print(f"Whale stopped in {time.monotonic() - began:.1f} s.", flush=True)
    return code
