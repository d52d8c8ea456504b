"""Enrichment: facts about what an event is about, added before rules match (settings ``WHALE_ENRICH_*``).

Rules match and templates render on the event's context (:func:`whale.rules.paths.event_context`)
plus one key, ``enrichment``, filled by the providers named in ``WHALE_ENRICH_PROVIDERS`` (in order;
default ``["inventory"]``), each under a place of its own:

- ``inventory`` -> ``enrichment.host``: the inventory host (:mod:`whale.inventory`) the event is about: its ``name``, ``address``, ``port``, ``user``,
  ``labels``, ``groups`` and free-form ``facts`` (``{{ enrichment.host.facts.log_dir }}``); the files
  of ``WHALE_ENRICH_INVENTORY``, else those of ``WHALE_EXECUTOR_INVENTORY`` (one inventory for both);
- ``http`` -> ``enrichment.cmdb``: the JSON a CMDB answers for ``GET`` on ``WHALE_ENRICH_HTTP_URL``
  (a template such as ``https://cmdb.example/api/hosts/{host}``; ``{host}`` is URL-quoted), within
  ``WHALE_ENRICH_HTTP_TIMEOUT`` seconds, cached ``WHALE_ENRICH_HTTP_TTL`` seconds (a 404 too).

The host an event is about: an alert's ``instance`` label (``host:port``; the port is dropped), else
the labels ``host``, ``hostname``, ``nodename``, ``node``, else ``data.host`` (a string); each is
looked up as an inventory host name, then as an address (an event naming no host is not looked up). A lookup that fails (no such
host, a CMDB timeout or error) never stops the event: it is listed in ``enrichment.errors`` as
``{"provider", "message"}``, which ``whale rules explain`` prints, and rules that need the missing
field simply do not match (or their render fails, which reaches a person as a to-do).

Providers are plug-ins: :data:`PROVIDERS` maps a name to a factory taking the settings; unknown names
and unusable settings are refused at start-up (:func:`build`). A provider answers synchronously
(called off the event loop); another source (e.g. an inventory fed by a compacted topic) is another
entry in the registry.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.cloudevent import CloudEvent
from whale.errors import ConfigError
from whale.incidents import HOST_LABELS
from whale.inventory import Host, Inventory, load_inventory
from whale.rules.paths import event_context

ENRICHMENT = "enrichment"
_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<name>[^:]+)):\d+$")


class LookupFailed(Exception):
    """A provider could not answer (the message says why; it lands in ``enrichment.errors``)."""


class EnrichmentSettings(BaseSettings):
    """Which providers enrich events, and theirs settings (env prefix ``WHALE_ENRICH_``)."""

    model_config = SettingsConfigDict(env_prefix="WHALE_ENRICH_", extra="ignore", populate_by_name=True)

    providers: list[str] = Field(
        default_factory=lambda: ["inventory"], description="enrichment providers, in order (see PROVIDERS)"
    )
    inventory: list[Path] = Field(
        default_factory=list,
        validation_alias=AliasChoices("WHALE_ENRICH_INVENTORY", "WHALE_EXECUTOR_INVENTORY"),
        description="inventory files or directories of the inventory provider (else the executor's)",
    )
    http_url: str | None = Field(
        default=None, description="CMDB URL template of the http provider, with {host}"
    )
    http_timeout: float = Field(default=2.0, gt=0, le=60, description="seconds one CMDB lookup may take")
    http_ttl: float = Field(default=300.0, ge=0, description="seconds a CMDB answer is cached")

    @field_validator("http_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            if not v.startswith(("http://", "https://")):
                raise ValueError("must be an http:// or https:// URL template")
            if "{host}" not in v:
                raise ValueError("must contain {host} (where the host name goes)")
        return v


class Carrier(Protocol):
    """What enrichment reads of an event: its data (a :class:`CloudEvent` or a lighter form of one)."""

    @property
    def data(self) -> Any: ...


class Provider(Protocol):
    """One source of facts: ``place`` is its key under ``enrichment``."""

    name: str
    place: str
    # an optional ``waits = False`` says lookups answer from memory (no I/O), so callers may run
    # them inline on an event loop; a provider without it is taken to wait (Enricher.waits)

    def lookup(self, hosts: list[str]) -> Any | None:
        """The facts for the first of ``hosts`` (candidates, best first) the source knows; None when
        there is nothing to look up; raises :class:`LookupFailed` saying why it found nothing."""
        ...


def host_candidates(event: Carrier) -> list[str]:
    """The names and addresses the event may be about, best first (see the module docstring)."""
    data: Mapping[str, Any] = event.data if isinstance(event.data, Mapping) else {}
    found_labels = data.get("labels")
    labels: Mapping[str, Any] = found_labels if isinstance(found_labels, Mapping) else {}
    found: list[str] = []
    values = [labels.get(name) for name in HOST_LABELS] + [data.get("host")]
    for value in values:
        if isinstance(value, str) and value:
            matched = _PORT.match(value)
            name = (matched.group("v6") or matched.group("name")) if matched else value
            if name not in found:
                found.append(name)
    return found


class InventoryProvider:
    """Hosts of a static inventory, by name or address."""

    name = "inventory"
    place = "host"
    waits = False  # a dict lookup

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._by_address = {h.address: h for h in sorted(inventory.hosts.values(), key=lambda h: h.name)}

    @classmethod
    def from_settings(cls, settings: EnrichmentSettings) -> InventoryProvider:
        return cls(load_inventory(settings.inventory) if settings.inventory else Inventory())

    def lookup(self, hosts: list[str]) -> Any | None:
        if not hosts or not self.inventory.hosts:
            return None
        for candidate in hosts:
            host: Host | None = self.inventory.hosts.get(candidate) or self._by_address.get(candidate)
            if host is not None:
                return host.public()
        where = ", ".join(self.inventory.sources) or "none"
        raise LookupFailed(f"no inventory host named or addressed {' or '.join(hosts)} (inventory: {where})")


class HttpProvider:
    """A CMDB over HTTP: ``GET url_template.format(host=...)`` -> JSON, cached per URL for ``ttl``."""

    name = "http"
    place = "cmdb"
    waits = True

    def __init__(self, url: str, *, timeout: float, ttl: float, client: httpx.Client | None = None) -> None:
        self.url = url
        self.ttl = ttl
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: EnrichmentSettings) -> HttpProvider:
        if settings.http_url is None:
            raise ConfigError(
                "the http enrichment provider needs WHALE_ENRICH_HTTP_URL (e.g. "
                "https://cmdb.example/api/hosts/{host})",
                field="http_url",
            )
        return cls(settings.http_url, timeout=settings.http_timeout, ttl=settings.http_ttl)

    def lookup(self, hosts: list[str]) -> Any | None:
        if not hosts:
            return None
        host = hosts[0]
        url = self.url.replace("{host}", urllib.parse.quote(host, safe=""))
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and now - cached[0] < self.ttl:
            return self._answer(host, cached[1])
        try:
            response = self._client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise LookupFailed(f"CMDB lookup of {host!r} failed: {type(exc).__name__}: {exc}") from None
        if response.status_code == 404:
            found: Any = None
        elif response.status_code != 200:
            raise LookupFailed(f"CMDB lookup of {host!r} answered HTTP {response.status_code}")
        else:
            try:
                found = response.json()
            except ValueError:
                raise LookupFailed(f"CMDB lookup of {host!r} answered something that is not JSON") from None
        with self._lock:
            self._cache[url] = (now, found)
        return self._answer(host, found)

    @staticmethod
    def _answer(host: str, found: Any) -> Any:
        if found is None:
            raise LookupFailed(f"the CMDB does not know {host!r} (HTTP 404)")
        return found


PROVIDERS: dict[str, Callable[[EnrichmentSettings], Provider]] = {
    InventoryProvider.name: InventoryProvider.from_settings,
    HttpProvider.name: HttpProvider.from_settings,
}
"""Every enrichment provider by name (a plug-in adds an entry)."""


class Enricher:
    """The providers in force, applied in order to every event."""

    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers
        self.waits = any(getattr(p, "waits", True) for p in providers)
        """Whether a lookup may wait on I/O (then run :meth:`context` off the event loop)."""

    def enrich(self, event: Carrier) -> dict[str, Any]:
        """What the providers know about ``event`` (never raises; failures are in ``errors``)."""
        out: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        hosts = host_candidates(event)
        for provider in self.providers:
            try:
                found = provider.lookup(hosts)
            except LookupFailed as exc:
                errors.append({"provider": provider.name, "message": str(exc)})
                continue
            except Exception as exc:  # a provider's bug must not stop events
                errors.append({"provider": provider.name, "message": f"{type(exc).__name__}: {exc}"})
                continue
            if found is not None:
                out[provider.place] = found
        if errors:
            out["errors"] = errors
        return out

    def context(self, event: CloudEvent) -> dict[str, Any]:
        """The event's context with ``enrichment`` (what rules match and templates render on)."""
        ctx = event_context(event)
        ctx[ENRICHMENT] = self.enrich(event)
        return ctx


def build(settings: EnrichmentSettings) -> Enricher:
    """The enricher of ``settings``; an unknown provider or unusable setting is a :class:`ConfigError`
    at start-up (an unreadable inventory file: :class:`whale.inventory.InventoryError`)."""
    providers: list[Provider] = []
    for name in settings.providers:
        factory = PROVIDERS.get(name)
        if factory is None:
            raise ConfigError(
                f"unknown enrichment provider {name!r}; known: {', '.join(sorted(PROVIDERS))}",
                field="providers",
            )
        providers.append(factory(settings))
    return Enricher(providers)


NO_ENRICHMENT = Enricher([])
"""An enricher with no providers (tests, tools that were not given settings)."""
