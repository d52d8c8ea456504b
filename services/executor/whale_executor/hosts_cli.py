"""``whale hosts list|show``: the inventory SSH actions act on, read from its files (no credentials shown)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from whale.errors import ConfigError
from whale.inventory import Host, Inventory, Selector, UnknownHost, load_inventory
from whale_executor.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("hosts", help="the executor's inventory of SSH hosts")
    commands = parser.add_subparsers(dest="hosts_command", required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="hosts of the inventory, optionally selected")
    listing.add_argument("--group", help="only hosts of this group")
    listing.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="only hosts with it"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = commands.add_parser("show", help="one host")
    show.add_argument("name")
    for command in (listing, show):
        command.add_argument(
            "--inventory",
            action="append",
            type=Path,
            default=[],
            help="inventory file or directory (default: WHALE_EXECUTOR_INVENTORY)",
        )
    listing.set_defaults(handler=_list)
    show.set_defaults(handler=_show)


def _inventory(args: argparse.Namespace) -> Inventory:
    paths = args.inventory or Settings().inventory
    if not paths:
        raise ConfigError(
            "no inventory: give --inventory PATH or set WHALE_EXECUTOR_INVENTORY", field="inventory"
        )
    return load_inventory(paths)


def select(inventory: Inventory, group: str | None, labels: list[str]) -> list[Host]:
    pairs: dict[str, str] = {}
    for text in labels:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label {text!r}: expected KEY=VALUE", field="label")
        pairs[key] = value
    if group is None and not pairs:
        return [inventory.hosts[n] for n in sorted(inventory.hosts)]
    try:
        return inventory.select(Selector(group=group, labels=pairs))
    except UnknownHost:
        return []


def format_hosts(hosts: list[Host]) -> str:
    if not hosts:
        return "no hosts"
    lines = []
    for h in hosts:
        labels = ",".join(f"{k}={v}" for k, v in sorted(h.labels.items()))
        lines.append(
            f"{h.name:28} {h.user}@{h.address}:{h.port:<6} groups={','.join(h.groups) or '-'}  {labels}"
        )
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    hosts = select(_inventory(args), args.group, args.label)
    print(json.dumps([h.public() for h in hosts], indent=2) if args.json else format_hosts(hosts))
    return 0


def _show(args: argparse.Namespace) -> int:
    inventory = _inventory(args)
    try:
        host = inventory.get(args.name)
    except UnknownHost as exc:
        raise ConfigError(exc.message, field="name") from None
    print(json.dumps({**host.public(), "source": host.source}, indent=2))
    return 0
