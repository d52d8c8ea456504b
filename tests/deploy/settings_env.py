"""Which environment variables a Whale process reads, computed from its pydantic-settings classes.

Generic on purpose: it follows the services' ``Settings`` classes as they grow, with no list of
names to keep in step. pydantic-settings' own ``EnvSettingsSource`` gives the names of each field
(env prefix, aliases, case sensitivity), so the result is what the process really reads.
"""

from __future__ import annotations

import importlib
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, EnvSettingsSource

from whale.settings import WhaleSettings


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes inside a field annotation (``X``, ``X | None``, ``Optional[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def _nested_names(model: type[BaseModel], prefix: str, delimiter: str, upper: bool) -> set[str]:
    """Names of a plain nested model's fields under ``env_nested_delimiter`` (``PREFIX__FIELD``)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        full = f"{prefix}{delimiter}{key.upper() if upper else key}"
        names.add(full)
        for sub in _models(field.annotation):
            names |= _nested_names(sub, full, delimiter, upper)
    return names


def env_names(settings_cls: type[BaseSettings]) -> set[str]:
    """Every environment variable ``settings_cls()`` reads.

    A field whose type is itself a ``BaseSettings`` (``whale: WhaleSettings = Field(default_factory=...)``)
    adds the names that class reads under its own prefix; a plain nested model adds
    ``<field env name><env_nested_delimiter><sub-field>`` when the class sets a delimiter. Names are
    upper-case unless the class is case-sensitive.
    """
    source = EnvSettingsSource(settings_cls)
    upper = not source.case_sensitive
    delimiter = source.env_nested_delimiter
    names: set[str] = set()
    for field_name, field in settings_cls.model_fields.items():
        field_env = [env for _key, env, _complex in source._extract_field_info(field, field_name)]
        names |= {env.upper() if upper else env for env in field_env}
        for model in _models(field.annotation):
            if issubclass(model, BaseSettings):
                names |= env_names(model)
            elif delimiter:
                for env in field_env:
                    names |= _nested_names(model, env.upper() if upper else env, delimiter, upper)
    return names


PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def registered_services() -> dict[str, str]:
    """``whale.services`` entry points of pyproject.toml: service name -> ``module:function``."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    services: dict[str, str] = project.get("entry-points", {}).get("whale.services", {})
    return services


def _settings_in(module: types.ModuleType, *, defined_only: bool) -> list[type[BaseSettings]]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseSettings)
        and obj is not BaseSettings
        and (obj.__module__ == module.__name__ or not defined_only)
    ]


def _import(name: str) -> types.ModuleType | None:
    """The module, or None when it does not exist (a missing dependency still raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not name.startswith(exc.name):
            raise
        return None


def settings_classes(service: str) -> list[type[BaseSettings]]:
    """The ``BaseSettings`` classes ``whale run <service>`` builds.

    Those the module of the service's ``whale.services`` entry point defines or imports (its
    ``main()`` builds them); when it names none, those of the nearest ``settings`` module above it
    (an empty list when there is none yet).
    """
    registered = registered_services()
    if service not in registered:
        raise LookupError(f"{service!r} is not a whale.services entry point in pyproject.toml")
    entry_name = registered[service].split(":")[0].strip()
    entry = importlib.import_module(entry_name)
    classes = _settings_in(entry, defined_only=False)
    if classes:
        return classes
    parts = entry_name.split(".")
    for name in (".".join([*parts[:i], "settings"]) for i in range(len(parts) - 1, 0, -1)):
        module = _import(name)
        if module is not None:
            return _settings_in(module, defined_only=True)
    return []


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def config_env_refs(doc: Any) -> set[str]:
    """Environment variables a configuration document tells a service to read.

    The conventions of Whale's configuration files: secret references ``env:NAME`` (executor
    actions), keys ending in ``_env`` whose value is a variable name (``secret_env: SHOP_SECRET``) or
    a mapping to variable names (``header_env: {Authorization: INVENTORY_AUTH}``) (adapters).
    """
    names: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if isinstance(key, str) and key.endswith("_env"):
                values = value.values() if isinstance(value, dict) else [value]
                names |= {v for v in values if isinstance(v, str) and _ENV_NAME.match(v)}
            names |= config_env_refs(value)
    elif isinstance(doc, list):
        for item in doc:
            names |= config_env_refs(item)
    elif isinstance(doc, str) and doc.startswith("env:") and _ENV_NAME.match(doc[4:]):
        names.add(doc[4:])
    return names


def allowed_env(command: list[str]) -> set[str]:
    """The variables a container running ``command`` (``["whale", "run", "indexer", ...]``) reads."""
    names = env_names(WhaleSettings)
    if command[1:2] == ["run"] and len(command) > 2:
        for cls in settings_classes(command[2]):
            names |= env_names(cls)
    return names
