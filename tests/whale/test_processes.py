"""The one table of processes (``whale.processes.SERVICES``) agrees with everything that repeats it."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from whale.cli import up
from whale.metrics import Families
from whale.processes import SERVICES, default_ports, markdown_table

ROOT = Path(__file__).resolve().parents[2]


def _settings_defaults() -> dict[str, tuple[type[BaseSettings], str]]:
    """Each service's settings class (``<package>.settings.Settings``) and its port field."""
    out: dict[str, tuple[type[BaseSettings], str]] = {}
    for name, s in SERVICES.items():
        cls = importlib.import_module(f"{s.package}.settings").Settings
        out[name] = (cls, "port")
    return out


def _primary_env(cls: type[BaseSettings], field: str) -> str:
    """The variable a setting is documented by: its first alias, else prefix + name."""
    alias = cls.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0]).upper()
    if isinstance(alias, str):
        return alias.upper()
    return (str(cls.model_config.get("env_prefix", "")) + field).upper()


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
        assert SERVICES[name].port_env == _primary_env(cls, field), name


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


def test_whale_ups_banner_prints_the_consoles_url(capsys: Any) -> None:
    env = up.example_env({}, Path("/nonexistent"))
    up._banner(env, Path("/nonexistent"))
    assert f"console        http://127.0.0.1:{SERVICES['console'].port}" in capsys.readouterr().out


def test_every_service_package_has_app_with_main_settings_and_metrics() -> None:
    """One process, one package: ``app.py`` holds ``main`` (the entry point), beside ``settings.py``
    (a ``Settings`` class) and ``metrics.py`` (the process's own metric families)."""
    for name, s in SERVICES.items():
        assert s.entry == f"{s.package}.app:main", name
        app = importlib.import_module(f"{s.package}.app")
        assert callable(app.main), name
        settings = importlib.import_module(f"{s.package}.settings")
        assert issubclass(settings.Settings, BaseSettings), name
        metrics = importlib.import_module(f"{s.package}.metrics")
        assert any(isinstance(value, Families) for value in vars(metrics).values()), name


def test_no_service_package_imports_another() -> None:
    """Services talk through Kafka; what two of them share lives in the ``whale`` library."""
    packages = {s.package for s in SERVICES.values()}
    for package in packages:
        root = Path(importlib.import_module(package).__file__ or "").parent
        others = packages - {package}
        for path in root.rglob("*.py"):
            imported = set(re.findall(r"^\s*(?:from|import)\s+(whale_\w+)", path.read_text(), re.M))
            assert not imported & others, f"{path} imports {sorted(imported & others)}"
