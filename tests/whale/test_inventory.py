"""The inventory: hosts from YAML files, looked up by name or selected by group and labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from whale.inventory import InventoryError, Selector, UnknownHost, load_inventory

WEB = """
defaults:
  user: ops
  key: file:/etc/whale/ssh/id_ed25519
  labels: {env: prod}
hosts:
  vm-web-01: {address: 10.0.0.11, labels: {role: web}, groups: [web]}
  vm-web-02: {address: 10.0.0.12, labels: {role: web, env: staging}, groups: [web]}
  db-01: {port: 2222, user: postgres, groups: [db]}
"""


@pytest.fixture
def inventory_dir(tmp_path: Path) -> Path:
    (tmp_path / "web.yaml").write_text(WEB)
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "edge.yml").write_text("hosts:\n  edge-1: {address: 192.0.2.1, user: edge}\n")
    (tmp_path / "notes.txt").write_text("not an inventory file")
    return tmp_path


def test_hosts_come_from_every_yaml_file_of_a_directory_with_the_file_defaults(inventory_dir: Path) -> None:
    inv = load_inventory([inventory_dir])
    assert sorted(inv.hosts) == ["db-01", "edge-1", "vm-web-01", "vm-web-02"]
    web = inv.get("vm-web-01")
    assert (web.address, web.port, web.user, web.key) == (
        "10.0.0.11",
        22,
        "ops",
        "file:/etc/whale/ssh/id_ed25519",
    )
    assert web.labels == {"env": "prod", "role": "web"}
    db = inv.get("db-01")
    assert (db.address, db.port, db.user) == ("db-01", 2222, "postgres")  # the name is the default address
    assert inv.get("edge-1").key is None


def test_a_selector_matches_on_group_and_every_label(inventory_dir: Path) -> None:
    inv = load_inventory([inventory_dir])
    assert [h.name for h in inv.select(Selector(group="web"))] == ["vm-web-01", "vm-web-02"]
    assert [h.name for h in inv.select(Selector(group="web", labels={"env": "prod"}))] == ["vm-web-01"]
    with pytest.raises(UnknownHost, match="no inventory host matches the selector group=cache"):
        inv.select(Selector(group="cache"))


def test_an_unknown_name_names_the_inventory_files(inventory_dir: Path) -> None:
    inv = load_inventory([inventory_dir / "web.yaml"])
    with pytest.raises(UnknownHost) as err:
        inv.get("vm-web-99")
    assert "'vm-web-99' is not in the inventory" in err.value.message
    assert "web.yaml" in err.value.message


def test_public_view_carries_no_credential_reference(inventory_dir: Path) -> None:
    shown = load_inventory([inventory_dir]).get("vm-web-01").public()
    assert "key" not in shown and "passphrase" not in shown
    assert shown["groups"] == ["web"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("hosts:\n  a: {address: x}\n", "hosts.a.user"),
        ("hosts:\n  a: {user: u, key: /etc/key}\n", "hosts.a.key"),
        ("hosts:\n  a: {user: u, port: 70000}\n", "hosts.a.port"),
        ("hosts:\n  a: {user: u, colour: red}\n", "hosts.a.colour"),
        ("hosts:\n  'bad name': {user: u}\n", "hosts.bad name"),
        ("defaults: {address: x}\nhosts: {}\n", "defaults.address"),
        ("hosts: [a, b]\n", "hosts"),
    ],
)
def test_a_bad_entry_names_the_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(InventoryError) as err:
        load_inventory([tmp_path])
    assert err.value.field == field
    assert err.value.source == str(tmp_path / "bad.yaml")


def test_a_host_defined_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("hosts:\n  h: {user: u}\n")
    (tmp_path / "b.yaml").write_text("hosts:\n  h: {user: v}\n")
    with pytest.raises(InventoryError, match="already defined in"):
        load_inventory([tmp_path])


def test_jump_hosts_must_exist_and_must_not_loop(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("hosts:\n  a: {user: u, via: b}\n  b: {user: u, via: nope}\n")
    with pytest.raises(InventoryError, match="jump host 'nope' is not in the inventory") as err:
        load_inventory([tmp_path])
    assert err.value.field == "hosts.b.via"
    (tmp_path / "a.yaml").write_text("hosts:\n  a: {user: u, via: b}\n  b: {user: u, via: a}\n")
    with pytest.raises(InventoryError, match="jump hosts loop: a -> b -> a"):
        load_inventory([tmp_path])


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory file"):
        load_inventory([tmp_path / "nope.yaml"])


def test_the_example_inventory_loads() -> None:
    inv = load_inventory([Path(__file__).parents[2] / "examples" / "inventory"])
    assert [h.name for h in inv.select(Selector(group="web"))] == ["vm-web-01", "vm-web-02"]
