"""``whale hosts list|show`` read the inventory files and never print credential references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whale.cli import main

INVENTORY = Path(__file__).parents[2] / "examples" / "inventory"


def test_hosts_list_selects_by_group_and_label(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hosts", "list", "--inventory", str(INVENTORY), "--group", "web", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in listed] == ["vm-web-01", "vm-web-02"]
    assert all("key" not in h for h in listed)
    assert main(["hosts", "list", "--inventory", str(INVENTORY), "--label", "role=db"]) == 0
    text = capsys.readouterr().out
    assert "db-01" in text and "postgres@10.0.0.21:2222" in text and "vm-web" not in text


def test_hosts_show_one_host_and_an_unknown_name_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hosts", "show", "db-01", "--inventory", str(INVENTORY)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["port"] == 2222 and shown["groups"] == ["db"] and "key" not in shown
    assert main(["hosts", "show", "nope", "--inventory", str(INVENTORY)]) == 2
    assert "'nope' is not in the inventory" in capsys.readouterr().err
