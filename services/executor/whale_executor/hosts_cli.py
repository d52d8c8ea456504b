"""``whale hosts list|show|publish``: the inventory SSH and Ansible actions act on.

``list``/``show`` print the live view (the compacted ``whale.inventory`` topic, plus the files of
``WHALE_EXECUTOR_INVENTORY`` as an executor sees them), or only the files given with ``--inventory``
(offline, no Kafka). Credential references are never printed. ``publish`` writes the hosts of
inventory files and HTTP sources onto the topic (once, or every interval with ``--watch``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from whale.errors import ConfigError
from whale.inventory import Host, Inventory, Selector, UnknownHost, load_inventory
from whale.settings import WhaleSettings
from whale_executor.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("hosts", help="the inventory of hosts SSH and Ansible actions act on")
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
            help="read only this inventory file or directory (default: the live whale.inventory topic"
            " and WHALE_EXECUTOR_INVENTORY)",
        )
    publish = commands.add_parser(
        "publish", help="publish the hosts of inventory files and HTTP sources on whale.inventory"
    )
    publish.add_argument(
        "--inventory", action="append", type=Path, default=[], help="inventory YAML file or directory"
    )
    publish.add_argument(
        "--source", action="append", type=Path, default=[], help="file of HTTP sources (CMDB endpoints)"
    )
    publish.add_argument(
        "--watch", action="store_true", help="keep publishing (files re-read, sources polled) until stopped"
    )
    publish.add_argument("--interval", type=float, help="seconds between rounds with --watch")
    publish.add_argument("--metrics-port", type=int, help="with --watch: serve /metrics on this port")
    publish.add_argument(
        "--topic", default="whale.inventory", help="the compacted topic (default whale.inventory)"
    )
    listing.set_defaults(handler=_list)
    show.set_defaults(handler=_show)
    publish.set_defaults(handler=_publish)


def _inventory(args: argparse.Namespace) -> Inventory:
    if args.inventory:
        return load_inventory(args.inventory)
    from whale.inventory_live import LiveInventory

    settings = Settings()
    files = load_inventory(settings.inventory)
    if not settings.inventory_topic:  # the executors read files only
        return files
    live = LiveInventory(settings.whale, files, topic=settings.inventory_topic)

    async def read() -> None:
        await live.start(timeout=30)
        await live.stop()

    asyncio.run(read())
    return live


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
            f"  ({h.source})"
        )
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    hosts = select(_inventory(args), args.group, args.label)
    shown = [{**h.public(), "origin": h.source} for h in hosts]
    print(json.dumps(shown, indent=2) if args.json else format_hosts(hosts))
    return 0


def _show(args: argparse.Namespace) -> int:
    inventory = _inventory(args)
    try:
        host = inventory.get(args.name)
    except UnknownHost as exc:
        raise ConfigError(exc.message, field="name") from None
    print(json.dumps({**host.public(), "origin": host.source, "source": host.source}, indent=2))
    return 0


def _publish(args: argparse.Namespace) -> int:
    from whale.inventory_live import publish

    if not args.inventory and not args.source:
        raise ConfigError("give --inventory PATH and/or --source FILE", field="inventory")
    return publish(
        WhaleSettings(),
        files=args.inventory,
        source_files=args.source,
        watch=args.watch,
        interval=args.interval,
        metrics_port=args.metrics_port,
        topic=args.topic,
    )
