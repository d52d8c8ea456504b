"""Inventory HTTP sources: CMDB records mapped to hosts with JSON paths; bad records skipped, not fatal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from whale.inventory import InventoryError, host_from_record
from whale.inventory_http import SKIPPED, SourceError, load_sources
from whale.jsonpath import MappingError

SOURCES = """
sources:
  - name: cmdb
    url: http://cmdb.test/api/hosts
    items: $.data
    header_env: {Authorization: TEST_CMDB_TOKEN}
    map:
      name: $.hostname
      address: $.ip
      port: $.ssh.port
      groups: $.groups
      labels: {role: $.role, env: $.env}
      facts: {log_dir: $.log_dir}
    defaults: {user: ops, key: "file:/etc/whale/ssh/id_ed25519"}
"""

RECORDS: dict[str, Any] = {
    "data": [
        {
            "hostname": "vm-web-01",
            "ip": "10.0.0.11",
            "role": "web",
            "env": "prod",
            "groups": ["web"],
            "log_dir": "/var/log/app",
        },
        {"hostname": "db-01", "ip": "10.0.0.21", "ssh": {"port": 2222}, "role": "db", "groups": "db"},
        {"ip": "10.0.0.99"},  # no name
        {"hostname": "bad-port", "ip": "10.0.0.30", "ssh": {"port": 70000}},
        {"hostname": "vm-web-01", "ip": "10.0.0.12"},  # a duplicate name
    ]
}


def source_file(tmp_path: Path, text: str = SOURCES) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def skipped_count(origin: str) -> float:
    value: float = SKIPPED.labels(origin=origin)._value.get()
    return value


def test_records_become_hosts_and_bad_ones_are_skipped_with_a_log_naming_host_and_field(
    tmp_path: Path,
) -> None:
    (source,) = load_sources(source_file(tmp_path))
    before = skipped_count("http:cmdb")
    with capture_logs() as logs:
        hosts = source.hosts(RECORDS)
    assert [h.name for h in hosts] == ["vm-web-01", "db-01"]
    web, db = hosts
    assert (web.address, web.port, web.user, web.labels, web.groups) == (
        "10.0.0.11",
        22,
        "ops",
        {"role": "web", "env": "prod"},
        ("web",),
    )
    assert web.facts == {"log_dir": "/var/log/app"} and web.key == "file:/etc/whale/ssh/id_ed25519"
    assert (db.port, db.groups, db.source) == (2222, ("db",), "http:cmdb")
    assert skipped_count("http:cmdb") - before == 3
    problems = [(e["field"], e["reason"]) for e in logs if e["event"] == "inventory_record_skipped"]
    assert problems[0] == ("map.name", "no host name at $.hostname")
    assert problems[1][0] == "hosts.bad-port.port" and "65535" in problems[1][1]
    assert problems[2] == ("hosts.vm-web-01", "duplicate host name")


def test_a_poll_that_fails_as_a_whole_raises_so_the_previous_hosts_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (source,) = load_sources(source_file(tmp_path))
    monkeypatch.setenv("TEST_CMDB_TOKEN", "Bearer t0ken")
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(500 if len(seen) > 1 else 200, json=RECORDS)

    async def polls() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            assert len(await source.fetch(client)) == 2
            with pytest.raises(SourceError, match="cmdb: HTTPStatusError"):
                await source.fetch(client)

    asyncio.run(polls())
    assert seen == ["Bearer t0ken", "Bearer t0ken"]
    with pytest.raises(SourceError, match=r"items: \$.data does not exist"):
        source.hosts({"hosts": []})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (SOURCES.replace("http://cmdb.test", "ftp://cmdb.test"), "sources.0.url"),
        (SOURCES.replace("      name: $.hostname\n", ""), "map.name"),
        (SOURCES.replace("address: $.ip", "adress: $.ip"), "map.adress"),
        (SOURCES.replace("items: $.data", "items: data"), "items"),
        (SOURCES.replace('key: "file:/etc/whale/ssh/id_ed25519"', "key: hunter2"), "defaults"),
    ],
)
def test_a_bad_sources_file_is_refused_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(MappingError) as info:
        load_sources(source_file(tmp_path, text))
    assert field in str(info.value)


def test_a_host_record_round_trips_and_a_bad_record_names_the_host_and_field(tmp_path: Path) -> None:
    (source,) = load_sources(source_file(tmp_path))
    web = source.hosts(RECORDS)[0]
    record = web.record()
    assert record["origin"] == "http:cmdb" and record["key"] == "file:/etc/whale/ssh/id_ed25519"
    assert host_from_record("vm-web-01", record) == web
    with pytest.raises(InventoryError) as info:
        host_from_record("vm-web-01", {**record, "port": "ssh"})
    assert info.value.field == "hosts.vm-web-01.port"
    with pytest.raises(InventoryError, match="differs from its key"):
        host_from_record("other", record)
