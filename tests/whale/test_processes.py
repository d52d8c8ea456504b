"""The one table of processes (``whale.processes.SERVICES``) agrees with everything that repeats it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from whale.cli import up
from whale.processes import SERVICES, default_ports, markdown_table

ROOT = Path(__file__).resolve().parents[2]


def _settings_defaults() -> dict[str, tuple[type[BaseSettings], str]]:
    from whale_adapters.dispatcher.settings import Settings as DispatcherSettings
    from whale_adapters.settings import Settings as AdapterSettings
    from whale_chat.settings import Settings as ChatSettings
    from whale_event_center.settings import Settings as CenterSettings
    from whale_event_center.todos import TodoSettings
    from whale_executor.settings import Settings as ExecutorSettings
    from whale_rule_engine.settings import Settings as RuleEngineSettings

    return {
        "event-center": (CenterSettings, "port"),
        "indexer": (CenterSettings, "indexer_health_port"),
        "dedupe": (CenterSettings, "dedupe_health_port"),
        "executor": (ExecutorSettings, "health_port"),
        "todo": (TodoSettings, "health_port"),
        "adapters": (AdapterSettings, "port"),
        "rule-engine": (RuleEngineSettings, "port"),
        "dispatcher": (DispatcherSettings, "port"),
        "chat": (ChatSettings, "port"),
    }


def test_ports_are_unique_so_every_process_runs_side_by_side() -> None:
    ports = [s.port for s in SERVICES.values()]
    assert len(ports) == len(set(ports))


def test_every_table_entry_is_an_installed_entry_point_and_nothing_else_is() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "whale.services"
    ]
    assert declared == {name: s.entry for name, s in SERVICES.items()}
    for s in SERVICES.values():
        assert s.entry.startswith(s.package + ".")


def test_each_services_settings_default_port_is_the_tables_or_unset() -> None:
    defaults = _settings_defaults()
    assert set(defaults) == set(SERVICES)
    for name, (cls, field) in defaults.items():
        default = cls.model_fields[field].default
        assert default in (None, SERVICES[name].port), f"{name}: {cls.__name__}.{field} defaults to {default}"
        prefix = str(cls.model_config.get("env_prefix", ""))
        assert SERVICES[name].port_env == (prefix + field).upper(), name


def test_whale_up_sets_every_port_from_the_table() -> None:
    env = up.example_env({}, Path("/nonexistent"))
    assert {k: env[k] for k in default_ports()} == default_ports()


def test_the_helm_chart_defaults_use_the_tables_ports() -> None:
    values: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "helm" / "whale" / "values.yaml").read_text())
    for s in SERVICES.values():
        section = values[s.helm_key]
        port = section["defaults"]["port"] if "defaults" in section else section["port"]  # executor pools
        assert port == s.port, f"{s.helm_key}.port is {port}, the table says {s.port}"


def test_the_readme_shows_the_table_as_it_is() -> None:
    text = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- processes:start -->\n(.*?)\n<!-- processes:end -->", text, re.S)
    assert shown is not None
    assert shown.group(1) == markdown_table()
