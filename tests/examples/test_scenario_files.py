"""The shipped scenarios load: the executor catalogue accepts the actions and workflows, every rule
validates against that catalogue (targets and params), `whale up` points the services at them, and
its demo hosts (a local sshd under the inventory names) answer the scenarios' SSH actions."""

from __future__ import annotations

import json
from pathlib import Path

from whale_executor.actions.base import ActionContext
from whale_executor.app import Executor
from whale_executor.catalog import load_catalog
from whale_executor.runner import Runner
from whale_executor.settings import Settings

from whale.cli import up
from whale.cloudevent import CloudEvent
from whale.infra.sshd import start_demo_hosts
from whale.processes import default_ports
from whale.rules.files import load_rules_dir

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def test_the_catalogue_loads_every_scenario_action_and_workflow() -> None:
    catalog = load_catalog(pool="default", dirs=[SCENARIOS / "catalog"])
    assert {"disk.remediate", "dmesg.cleanup"} <= set(catalog.workflows)
    assert {"disk.usage", "disk.cleanup_old_files", "disk.notify", "todo.open"} <= set(catalog.actions)


def test_every_scenario_rule_validates_against_the_published_catalogue() -> None:
    catalog = load_catalog(pool="default", dirs=[SCENARIOS / "catalog"])
    record = CloudEvent.create(type="whale.catalog.published", source="tests", data=catalog.describe())
    report = load_rules_dir(SCENARIOS / "rules", catalog={"default": record})
    assert report.problems == []
    assert set(report.rules) == {"disk-capacity", "dmesg-errors"}


def test_scenario_schemas_and_payloads_are_json_and_named_by_type() -> None:
    for path in (SCENARIOS / "schemas").glob("*.json"):
        assert json.loads(path.read_text())["$id"] == path.stem
    for path in (SCENARIOS / "payloads").glob("*.json"):
        json.loads(path.read_text())


def test_whale_up_points_the_services_at_the_scenarios_without_overriding_the_user() -> None:
    env = up.example_env({"WHALE_EVENT_CENTER_PORT": "9000"}, SCENARIOS)
    assert env["WHALE_EVENT_CENTER_PORT"] == "9000"
    assert env["WHALE_RULES_DIR"] == str(SCENARIOS / "rules")
    assert json.loads(env["WHALE_EXECUTOR_CATALOG_DIRS"]) == [str(SCENARIOS / "catalog")]
    ports = [env[name] for name in default_ports()]
    assert len(set(ports)) == len(ports)


def test_the_demo_hosts_have_old_and_fresh_logs(tmp_path: Path) -> None:
    up.prepare_demo_hosts(tmp_path)
    logs = list((tmp_path / "vm-web-01" / "log").iterdir())
    assert len(logs) == 80
    assert "EXT4-fs error" in (tmp_path / "db-01" / "kmsg.log").read_text()


def test_the_robot_port_and_the_demo_directory_can_be_moved() -> None:
    moved = {"WHALE_EXAMPLE_ROBOT_PORT": "23456", "WHALE_EXAMPLE_DEMO_DIR": "/tmp/elsewhere"}
    env = up.example_env(moved, SCENARIOS)
    assert env["WHALE_EXAMPLE_WECOM_WEBHOOK"].startswith("http://127.0.0.1:23456/")
    assert up.demo_dir(env) == Path("/tmp/elsewhere")
    assert up.demo_dir({}) == up.DEMO_DIR
    assert up.robot_port({}) == up.ROBOT_PORT


async def test_the_demo_hosts_run_the_scenario_actions_over_ssh(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    server = start_demo_hosts(tmp_path / "sshd", up.DEMO_HOSTS, env)
    assert server is not None
    up.prepare_demo_hosts(tmp_path)
    settings = Settings(
        inventory=[Path(p) for p in json.loads(env["WHALE_EXECUTOR_INVENTORY"])],
        ssh_known_hosts=Path(env["WHALE_EXECUTOR_SSH_KNOWN_HOSTS"]),
        catalog_dirs=[SCENARIOS / "catalog"],
    )
    executor = Executor(settings)
    runner = Runner(pool="default", concurrency=2)
    ctx = ActionContext(request_id="r", idempotency_key="k", pool="default")
    actions = executor.catalog.actions
    logs = tmp_path / "vm-web-01" / "log"
    try:
        usage = await runner.execute(actions["disk.usage"], {"host": "vm-web-01", "dir": str(logs)}, ctx)
        kmsg = str(tmp_path / "db-01" / "kmsg.log")
        lines = await runner.execute(actions["dmesg.record"], {"host": "db-01", "log_file": kmsg}, ctx)
        unknown = await runner.execute(actions["disk.usage"], {"host": "vm-web-99", "dir": str(logs)}, ctx)
    finally:
        await executor.ssh.connections.close()
        server.stop()
    assert usage.status == "succeeded" and int(usage.output["stdout"].split()[0]) >= 80_000
    assert lines.status == "succeeded" and "EXT4-fs error" in lines.output["stdout"]
    assert unknown.status == "failed" and unknown.error is not None
    assert "'vm-web-99' is not in the inventory" in unknown.error["message"]


def test_whale_up_keeps_a_rules_directory_the_user_set_under_a_former_name() -> None:
    env = up.example_env({"WHALE_TODO_RULES_DIR": "/srv/rules"}, SCENARIOS)
    assert "WHALE_RULES_DIR" not in env and env["WHALE_TODO_RULES_DIR"] == "/srv/rules"


def test_the_community_disk_alert_gets_its_host_facts_from_the_inventory(tmp_path: Path) -> None:
    """The shipped payload is node-exporter's alert as published (no Whale-only annotations, instance
    host:port); the disk rule renders host, log directory and capacity from the demo inventory."""
    from whale_adapters.alertmanager import alert_events
    from whale_rule_engine.engine import plan

    from whale.enrichment import EnrichmentSettings, build

    payload = json.loads((SCENARIOS / "payloads" / "disk-alert.json").read_text())
    [alert] = payload["alerts"]
    assert set(alert["annotations"]) == {"summary", "description"}
    assert alert["labels"]["instance"] == "vm-web-01:9100"
    env: dict[str, str] = {}
    server = start_demo_hosts(tmp_path / "sshd", up.DEMO_HOSTS, env, up.demo_facts(tmp_path))
    assert server is not None
    server.stop()
    enricher = build(
        EnrichmentSettings(inventory=[Path(p) for p in json.loads(env["WHALE_EXECUTOR_INVENTORY"])])
    )
    [event] = alert_events(payload, source="/am")
    ctx = enricher.context(event)
    rules = load_rules_dir(SCENARIOS / "rules").rules
    assert [r.id for r in rules.values() if r.condition.evaluate(ctx)] == ["disk-capacity"]
    [trigger], failures = plan([rules["disk-capacity"]], event, ctx=ctx)
    assert not failures
    assert trigger.params["host"] == "vm-web-01"
    assert trigger.params["log_dir"] == str(tmp_path / "vm-web-01" / "log")
    assert trigger.params["capacity_bytes"] == up.DEMO_CAPACITY
