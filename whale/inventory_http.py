"""Inventory HTTP sources: hosts polled from a CMDB-like endpoint, each record mapped with JSON paths.

A sources file (``whale hosts publish --source FILE``):

.. code-block:: yaml

    sources:
      - name: cmdb
        url: https://cmdb.example.com/api/hosts
        interval: 300                       # seconds between polls (with --watch)
        timeout: 10
        header_env: {Authorization: CMDB_TOKEN}   # header -> environment variable holding its value
        items: $.data                       # where the list of records is in the response
        map:                                # host field -> JSON path inside one record
          name: $.hostname                  # required
          address: $.ip                     # absent paths leave the field to its default
          port: $.ssh_port
          user: $.account
          groups: $.groups                  # a list of group names
          labels: {role: $.role, env: $.environment}
          facts: {log_dir: $.log_dir, owner: $.team}
        defaults: {user: ops, key: "file:/etc/whale/ssh/id_ed25519"}   # as an inventory file's

The JSON paths are the adapters' (:mod:`whale.jsonpath`, as a poller's ``items`` and ``key``). A
record that does not make a valid host (no name, a bad port, a label that is not a string...) is
skipped: logged as ``inventory_record_skipped`` with the source, its index, the host and the field,
and counted in ``whale_inventory_records_skipped_total``; the other records still count. A poll that
fails as a whole (HTTP error, not JSON, no list at ``items``) raises: the caller keeps the source's
previous hosts rather than delete them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog
import yaml
from pydantic import Field, ValidationError

from whale.errors import WhaleError
from whale.inventory import Host, InventoryError, parse_host
from whale.jsonpath import JsonPath, MappingError, compile_path
from whale.metrics import Families
from whale.polling import PolledEndpoint

log = structlog.get_logger(__name__)

FAMILIES = Families("inventory")
SKIPPED = FAMILIES.counter(
    "whale_inventory_records_skipped_total",
    "Inventory records not usable as hosts (skipped), by where they came from",
    ["origin"],
)
_MAP_KEYS = frozenset({"name", "address", "port", "user", "groups", "labels", "facts", "via"})


class SourceError(WhaleError, status=502, code="source_failed", retryable=True):
    """An inventory HTTP source could not be polled (HTTP error, not JSON, no list of records)."""


class HttpSourceConfig(PolledEndpoint):
    """One HTTP source of hosts: the endpoint (url, timeout, items, headers: shared with the adapters'
    pollers, :class:`whale.polling.PolledEndpoint`) and how one record maps to a host."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    interval: float = Field(default=300.0, gt=0)
    map: dict[str, str | dict[str, str]]
    defaults: dict[str, Any] = Field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http:{self.name}"


class HttpSource:
    """A configured source: its compiled paths, and how to turn a response into hosts."""

    def __init__(self, config: HttpSourceConfig, *, where: str) -> None:
        self.config = config
        self.name = config.name
        self._items = compile_path(config.items, field=f"{where}.items")
        if "name" not in config.map or not isinstance(config.map["name"], str):
            raise MappingError(
                f"{where}.map.name: required, the JSON path of the host name", field="map.name"
            )
        self._paths: dict[str, JsonPath | dict[str, JsonPath]] = {}
        for key, value in config.map.items():
            if key not in _MAP_KEYS:
                raise MappingError(
                    f"{where}.map.{key}: not a host field ({', '.join(sorted(_MAP_KEYS))})",
                    field=f"map.{key}",
                )
            if isinstance(value, str):  # labels/facts: a path to a whole object, or one path per key
                self._paths[key] = compile_path(value, field=f"{where}.map.{key}")
            else:
                if key not in ("labels", "facts"):
                    raise MappingError(f"{where}.map.{key}: must be a JSON path", field=f"map.{key}")
                self._paths[key] = {
                    k: compile_path(v, field=f"{where}.map.{key}.{k}") for k, v in value.items()
                }
        try:  # the defaults alone need not make a host (the records add to them): check what is there
            parse_host("defaults", {"user": "-", **config.defaults}, {}, source=config.origin)
        except InventoryError as exc:
            field = (exc.field or "").replace("hosts.defaults", "defaults")
            raise MappingError(f"{where}.{field}: {exc.reason}", field=field) from None

    async def fetch(self, client: httpx.AsyncClient) -> list[Host]:
        """Poll once: the hosts of every usable record. :class:`SourceError` if the poll failed as a whole."""
        c = self.config
        headers = c.endpoint_headers(label=f"inventory source {self.name}", field=f"sources.{self.name}")
        try:
            doc = await c.get_json(client, headers)
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceError(f"inventory source {self.name}: {type(exc).__name__}: {exc}") from None
        return self.hosts(doc)

    def hosts(self, doc: Any) -> list[Host]:
        """The hosts of a response document; bad records are skipped (logged and counted)."""
        try:
            records = self.config.records(doc, label=f"inventory source {self.name}")
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        out: list[Host] = []
        seen: set[str] = set()
        for index, record in enumerate(records):
            try:
                host = self.host(record)
            except InventoryError as exc:
                skipped(self.config.origin, index=index, field=exc.field, reason=exc.reason)
                continue
            if host.name in seen:
                skipped(
                    self.config.origin, index=index, field=f"hosts.{host.name}", reason="duplicate host name"
                )
                continue
            seen.add(host.name)
            out.append(host)
        return out

    def host(self, record: Any) -> Host:
        """One record as a host; :class:`InventoryError` names the host (or record) and the field."""
        origin = self.config.origin
        entry: dict[str, Any] = {}
        for key, path in self._paths.items():
            if isinstance(path, dict):
                found = {k: p.get(record, _ABSENT) for k, p in path.items()}
                entry[key] = {k: v for k, v in found.items() if v is not _ABSENT}
            else:
                value = path.get(record, _ABSENT)
                if value is not _ABSENT and value is not None:
                    entry[key] = value
        name = entry.pop("name", None)
        if not isinstance(name, str) or not name:
            raise InventoryError(
                f"no host name at {self.config.map['name']}", source=origin, field="map.name"
            )
        if isinstance(entry.get("groups"), str):
            entry["groups"] = [entry["groups"]]
        return parse_host(name, entry, self.config.defaults, source=origin)


_ABSENT = object()


def skipped(origin: str, *, index: int | None = None, field: str | None, reason: str) -> None:
    """Log and count one record that is not a usable host."""
    SKIPPED.labels(origin=origin).inc()
    log.warning("inventory_record_skipped", origin=origin, index=index, field=field, reason=reason)


def load_sources(path: Path) -> list[HttpSource]:
    """The sources of a sources file; :class:`MappingError` names the file and the field."""
    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{where}: cannot read: {exc}", field="sources", source=where) from None
    if not isinstance(doc, Mapping) or set(doc) - {"sources"} or not isinstance(doc.get("sources", []), list):
        raise MappingError(
            f"{where}: expected a mapping with a list 'sources'", field="sources", source=where
        )
    sources: list[HttpSource] = []
    for i, raw in enumerate(doc.get("sources") or []):
        try:
            config = HttpSourceConfig.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(["sources", str(i), *(str(p) for p in err["loc"])])
            raise MappingError(f"{where}: {field}: {err['msg']}", field=field, source=where) from None
        sources.append(HttpSource(config, where=f"{where}: sources.{i}"))
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise MappingError(f"{where}: sources: duplicate name {name!r}", field="sources", source=where)
    return sources
