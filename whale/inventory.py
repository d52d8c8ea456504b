"""The inventory: the hosts Whale acts on and knows about, by name: address, user, labels, groups, facts.

Shared by the executor (SSH and Ansible actions resolve hosts here) and by enrichment (host facts
such as log directories, owner team or environment, added to events before rules match).

Loaded at start-up from YAML files (``WHALE_EXECUTOR_INVENTORY``: files, or directories whose
``*.yaml``/``*.yml`` files are read, recursively). A file:

.. code-block:: yaml

    defaults:                       # optional: applied to every host of this file
      user: ops
      key: file:/etc/whale/ssh/id_ed25519   # secret reference to the private key (never the key itself)
      passphrase: env:WHALE_SSH_PASSPHRASE  # optional secret reference
    hosts:
      vm-web-01: {address: 10.0.0.11, labels: {role: web, env: prod}, groups: [web],
                  facts: {log_dir: /var/log/app, owner: web-team}}   # free-form facts (no secrets)
      db-01: {address: db-01.internal, port: 2222, user: postgres, groups: [db]}
      db-02: {address: 10.1.0.22, via: bastion-01}   # through the jump host bastion-01

A request names one host (``host: "{{ params.host }}"`` in the action) or a selector (group and/or
labels). A name the inventory does not hold is an error: nothing is attempted anywhere else.

Hosts also travel as records of the compacted ``whale.inventory`` topic (:meth:`Host.record`,
:func:`host_from_record`; published by ``whale hosts publish`` from files and HTTP sources, read live
by :mod:`whale.inventory_live`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from whale.errors import ConfigError
from whale.topics import INVENTORY as INVENTORY_TOPIC

HOST_RECORD = "whale.inventory.host"  # the event type of its records
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")
_HOST_KEYS = frozenset(
    {"address", "port", "user", "labels", "groups", "key", "passphrase", "certificate", "via", "facts"}
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InventoryError(ConfigError, code="invalid_inventory"):
    """An inventory file is invalid (``source`` = file, ``field`` = where inside it)."""

    def __init__(self, message: str, *, source: str = "", field: str | None = None) -> None:
        where = f"{source}: " if source else ""
        where += f"{field}: " if field else ""
        super().__init__(where + message, field=field, source=source)
        self.source = source
        self.reason = message


def secret_ref_problem(ref: object) -> str | None:
    """Why ``ref`` is not a secret reference (``env:NAME`` or ``file:/abs/path``), or None if it is."""
    if not isinstance(ref, str) or not (ref.startswith("env:") or ref.startswith("file:")):
        return "must be a secret reference (env:NAME or file:/path); inline secret values are not allowed"
    if ref.startswith("env:") and not _ENV_NAME.match(ref[4:]):
        return f"{ref!r} is not a valid environment variable name"
    if ref.startswith("file:") and not ref[5:].startswith("/"):
        return f"{ref!r} must name an absolute path"
    return None


class Host(BaseModel):
    """One inventory host. ``key``/``passphrase``/``certificate`` are secret references."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    address: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    groups: tuple[str, ...] = ()
    key: str | None = None
    passphrase: str | None = None
    certificate: str | None = None
    via: str | None = Field(default=None, description="inventory name of the jump host to connect through")
    facts: dict[str, Any] = Field(
        default_factory=dict, description="free-form facts about the host (no secrets)"
    )
    source: str = ""

    @field_validator("key", "passphrase", "certificate")
    @classmethod
    def _secret_ref(cls, v: str | None) -> str | None:
        if v is not None:
            problem = secret_ref_problem(v)
            if problem:
                raise ValueError(problem)
        return v

    def public(self) -> dict[str, Any]:
        """What may be shown (results, ``whale hosts``): no credential references."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "labels": dict(self.labels),
            "groups": list(self.groups),
            **({"via": self.via} if self.via else {}),
            **({"facts": dict(self.facts)} if self.facts else {}),
        }

    def record(self) -> dict[str, Any]:
        """The host as the data of its ``whale.inventory`` record (credential *references* included,
        never values; ``origin`` = where it was defined)."""
        data = self.model_dump(mode="json", exclude={"source"})
        data["groups"] = list(self.groups)
        data["origin"] = self.source
        return data


class Selector(BaseModel):
    """Hosts by group and/or labels (every given criterion must hold)."""

    model_config = ConfigDict(extra="forbid")

    group: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, host: Host) -> bool:
        if self.group is not None and self.group not in host.groups:
            return False
        return all(host.labels.get(k) == v for k, v in self.labels.items())

    def text(self) -> str:
        parts = [f"group={self.group}"] if self.group is not None else []
        parts += [f"{k}={v}" for k, v in sorted(self.labels.items())]
        return ", ".join(parts) or "(everything)"


class UnknownHost(LookupError):
    """A name or selector the inventory cannot answer; ``message`` says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Inventory:
    """Hosts by name."""

    def __init__(self, hosts: Iterable[Host] = (), *, sources: Iterable[str] = ()) -> None:
        self.hosts: dict[str, Host] = {}
        self.sources = list(sources)
        for host in hosts:
            self.add(host)

    def add(self, host: Host) -> None:
        if host.name in self.hosts:
            raise InventoryError(
                f"host {host.name!r} is already defined in {self.hosts[host.name].source}",
                source=host.source,
                field=f"hosts.{host.name}",
            )
        self.hosts[host.name] = host

    def replace(self, hosts: Mapping[str, Host]) -> None:
        """Swap in a whole new set of hosts at once (a reader sees the old set or the new one)."""
        self.hosts = dict(hosts)

    def get(self, name: str) -> Host:
        host = self.hosts.get(name)
        if host is None:
            where = ", ".join(self.sources) or "none configured: set WHALE_EXECUTOR_INVENTORY"
            raise UnknownHost(f"host {name!r} is not in the inventory (inventory files: {where})")
        return host

    def select(self, selector: Selector) -> list[Host]:
        found = [h for _, h in sorted(self.hosts.items()) if selector.matches(h)]
        if not found:
            raise UnknownHost(f"no inventory host matches the selector {selector.text()}")
        return found


def load_inventory(paths: Iterable[Path]) -> Inventory:
    """Read every inventory file; a bad one raises :class:`InventoryError` naming the file and field."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise InventoryError("no such inventory file or directory", source=str(path))
    inventory = Inventory(sources=[str(f) for f in files])
    for file in files:
        for host in parse_file(file):
            inventory.add(host)
    check_jumps(inventory)
    return inventory


def check_jumps(inventory: Inventory) -> None:
    """Every ``via`` names an inventory host, and no chain of jump hosts loops."""
    for host in inventory.hosts.values():
        seen = [host.name]
        hop = host
        while hop.via is not None:
            if hop.via not in inventory.hosts:
                raise InventoryError(
                    f"jump host {hop.via!r} is not in the inventory",
                    source=hop.source,
                    field=f"hosts.{hop.name}.via",
                )
            if hop.via in seen:
                raise InventoryError(
                    f"jump hosts loop: {' -> '.join([*seen, hop.via])}",
                    source=host.source,
                    field=f"hosts.{host.name}.via",
                )
            seen.append(hop.via)
            hop = inventory.hosts[hop.via]


def parse_file(path: Path) -> list[Host]:
    source = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InventoryError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=source) from None
    except OSError as exc:
        raise InventoryError(f"cannot read: {exc.strerror}", source=source) from None
    return parse_document(doc, source=source)


def parse_document(doc: Any, *, source: str) -> list[Host]:
    if not isinstance(doc, Mapping):
        raise InventoryError("an inventory file must be a mapping with 'hosts'", source=source)
    unknown = sorted(set(doc) - {"defaults", "hosts"})
    if unknown:
        raise InventoryError(f"unknown key {unknown[0]!r} (allowed: defaults, hosts)", source=source)
    defaults = doc.get("defaults") or {}
    hosts = doc.get("hosts") or {}
    if not isinstance(defaults, Mapping):
        raise InventoryError("must be a mapping", source=source, field="defaults")
    if not isinstance(hosts, Mapping):
        raise InventoryError("must be a mapping of host name to its settings", source=source, field="hosts")
    bad = sorted(set(defaults) - (_HOST_KEYS - {"address"}))
    if bad:
        raise InventoryError(f"unknown key {bad[0]!r}", source=source, field=f"defaults.{bad[0]}")
    return [parse_host(name, entry, defaults, source=source) for name, entry in hosts.items()]


def parse_host(name: Any, entry: Any, defaults: Mapping[str, Any], *, source: str) -> Host:
    """One host from its settings over ``defaults``; :class:`InventoryError` names the host and field."""
    field = f"hosts.{name}"
    if not isinstance(name, str) or not HOST_NAME.match(name):
        raise InventoryError("a host name is letters, digits, '.', '_' and '-'", source=source, field=field)
    entry = entry or {}
    if not isinstance(entry, Mapping):
        raise InventoryError("must be a mapping (address, port, user, ...)", source=source, field=field)
    merged = {"address": name, **defaults, **entry, "name": name, "source": source}
    if isinstance(defaults.get("labels"), Mapping) and isinstance(entry.get("labels"), Mapping):
        merged["labels"] = {**defaults["labels"], **entry["labels"]}
    return _validated(merged, source=source, field=field)


def host_from_record(key: str, data: Any) -> Host:
    """The host of a ``whale.inventory`` record (key = host name); :class:`InventoryError` names the
    host and the field when the record is not a valid host."""
    field = f"hosts.{key}"
    if not isinstance(data, Mapping):
        raise InventoryError("a host record is a JSON object", source=INVENTORY_TOPIC, field=field)
    origin = str(data.get("origin") or INVENTORY_TOPIC)
    if data.get("name", key) != key:
        raise InventoryError(
            f"record name {data.get('name')!r} differs from its key", source=origin, field=field
        )
    fields = {k: v for k, v in data.items() if k != "origin"}
    return _validated({**fields, "name": key, "source": origin}, source=origin, field=field)


def _validated(merged: Mapping[str, Any], *, source: str, field: str) -> Host:
    try:
        return Host.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InventoryError(err["msg"], source=source, field=f"{field}.{loc}" if loc else field) from None
