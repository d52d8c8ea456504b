"""Enrichment before matching: inventory host facts and a CMDB over HTTP; failures are visible, not fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from whale.cloudevent import CloudEvent
from whale.enrichment import (
    PROVIDERS,
    Enricher,
    EnrichmentSettings,
    HttpProvider,
    InventoryProvider,
    build,
    host_candidates,
)
from whale.errors import ConfigError
from whale.inventory import InventoryError

INVENTORY = """
defaults: {user: ops}
hosts:
  vm-web-01:
    address: 10.0.0.11
    labels: {env: prod}
    facts: {log_dir: /var/log/app, capacity_bytes: 90000, owner: web-team}
  db-01: {address: db-01.internal}
"""


def alert(instance: str, **data: Any) -> CloudEvent:
    return CloudEvent.create(
        type="prometheus.alert.firing",
        source="/am",
        subject="fp1",
        data={"labels": {"alertname": "HostOutOfDiskSpace", "instance": instance}, **data},
        extensions={"alertstate": "firing"},
    )


def inventory(tmp_path: Path) -> EnrichmentSettings:
    (tmp_path / "hosts.yaml").write_text(INVENTORY)
    return EnrichmentSettings(inventory=[tmp_path / "hosts.yaml"])


def test_an_instance_label_host_port_or_an_address_resolves_to_the_inventory_host_and_its_facts(
    tmp_path: Path,
) -> None:
    enricher = build(inventory(tmp_path))
    by_name = enricher.enrich(alert("vm-web-01:9100"))
    assert by_name["host"]["name"] == "vm-web-01"
    assert by_name["host"]["facts"]["log_dir"] == "/var/log/app"
    by_address = enricher.enrich(alert("10.0.0.11:9100"))
    assert by_address["host"]["name"] == "vm-web-01" and "errors" not in by_address
    assert host_candidates(alert("[fe80::1]:9100")) == ["fe80::1"]


def test_an_unknown_host_is_an_error_in_the_enrichment_not_a_failure_of_the_event(tmp_path: Path) -> None:
    enricher = build(inventory(tmp_path))
    found = enricher.enrich(alert("vm-nope:9100"))
    assert "host" not in found
    [problem] = found["errors"]
    assert problem["provider"] == "inventory" and "vm-nope" in problem["message"]
    assert enricher.enrich(CloudEvent.create(type="backup.failed", source="x", data={"job": "n"})) == {}


def test_unknown_providers_and_unusable_settings_are_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build(EnrichmentSettings(providers=["inventory", "ldap"]))
    assert caught.value.field == "providers" and "known: http, inventory" in str(caught.value)
    with pytest.raises(ConfigError) as missing_url:
        build(EnrichmentSettings(providers=["http"]))
    assert missing_url.value.field == "http_url"
    with pytest.raises(ValueError, match="must contain"):
        EnrichmentSettings(http_url="https://cmdb.example/hosts")
    (tmp_path / "bad.yaml").write_text("hosts: [1]")
    with pytest.raises(InventoryError):
        build(EnrichmentSettings(inventory=[tmp_path / "bad.yaml"]))
    assert set(PROVIDERS) == {"inventory", "http"}


class Cmdb:
    """A CMDB behind httpx's mock transport, counting requests."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(str(request.url))
        host = request.url.path.rsplit("/", 1)[-1]
        if host == "slow":
            raise httpx.ReadTimeout("timed out", request=request)
        if host == "vm-web-01":
            return httpx.Response(200, json={"owner": "web-team", "env": "prod"})
        if host == "broken":
            return httpx.Response(500, text="oops")
        return httpx.Response(404)


def cmdb_enricher(cmdb: Cmdb, ttl: float = 300.0) -> Enricher:
    client = httpx.Client(transport=httpx.MockTransport(cmdb))
    provider = HttpProvider("https://cmdb.example/api/hosts/{host}", timeout=1.0, ttl=ttl, client=client)
    return Enricher([provider])


def test_the_http_provider_looks_the_host_up_once_per_ttl_and_reports_failures() -> None:
    cmdb = Cmdb()
    enricher = cmdb_enricher(cmdb)
    first = enricher.enrich(alert("vm-web-01:9100"))
    second = enricher.enrich(alert("vm-web-01:9100"))
    assert first["cmdb"] == second["cmdb"] == {"owner": "web-team", "env": "prod"}
    assert cmdb.calls == ["https://cmdb.example/api/hosts/vm-web-01"]  # cached
    for host, words in (("slow", "ReadTimeout"), ("broken", "HTTP 500"), ("gone", "does not know")):
        [problem] = enricher.enrich(alert(f"{host}:9100"))["errors"]
        assert problem["provider"] == "http" and words in problem["message"]
    enricher.enrich(alert("gone:9100"))
    assert cmdb.calls.count("https://cmdb.example/api/hosts/gone") == 1  # a 404 is cached too
    expired = cmdb_enricher(cmdb, ttl=0.0)
    expired.enrich(alert("vm-web-01:9100"))
    assert cmdb.calls.count("https://cmdb.example/api/hosts/vm-web-01") == 2


def test_inventory_provider_with_no_inventory_adds_nothing() -> None:
    assert InventoryProvider.from_settings(EnrichmentSettings()).lookup(["vm-web-01"]) is None


def test_an_enricher_waits_only_when_a_provider_may_wait_on_io() -> None:
    from whale.enrichment import NO_ENRICHMENT, Enricher, HttpProvider, InventoryProvider
    from whale.inventory import Inventory

    assert not NO_ENRICHMENT.waits
    assert not Enricher([InventoryProvider(Inventory())]).waits
    http = HttpProvider("http://cmdb.invalid/{host}", timeout=1.0, ttl=1.0)
    assert Enricher([InventoryProvider(Inventory()), http]).waits
