"""``whale actions list|validate``: the published catalogues, and offline validation of definitions."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from whale import topics
from whale.compacted import CompactedView
from whale.settings import WhaleSettings
from whale_executor.catalog import load_catalog


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("actions", help="executor actions and workflows")
    commands = parser.add_subparsers(dest="actions_command", required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="print the catalogues executors published on whale.catalog")
    listing.add_argument("--pool", help="only this pool")
    listing.add_argument("--json", action="store_true", help="print the catalogue documents as JSON")
    listing.set_defaults(handler=_list)
    check = commands.add_parser("validate", help="load and validate action/workflow YAML without Kafka")
    check.add_argument("dirs", nargs="+", type=Path, help="directories of YAML definitions")
    check.set_defaults(handler=_validate)


async def read_catalogs(settings: WhaleSettings) -> dict[str, dict[str, Any]]:
    """pool -> published catalogue, read from the compacted topic."""
    view = CompactedView(settings, topics.CATALOG)
    await view.start()
    try:
        return {pool: event.data for pool, event in view.items().items() if isinstance(event.data, dict)}
    finally:
        await view.stop()


def format_catalogs(catalogs: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for pool in sorted(catalogs):
        doc = catalogs[pool]
        lines.append(
            f"pool {pool} (topic {topics.actions_topic(pool) if topics.POOL_NAME.match(pool) else '?'})"
        )
        for act in doc.get("actions", []):
            props = ", ".join(sorted((act.get("params_schema") or {}).get("properties", {})))
            flag = "idempotent" if act.get("idempotent") else ""
            lines.append(
                f"  {act.get('name', ''):32} {act.get('kind', ''):8} {flag:11} ({props})  {act.get('description', '')}"
            )
        for wf in doc.get("workflows", []):
            props = ", ".join(sorted((wf.get("params_schema") or {}).get("properties", {})))
            lines.append(
                f"  {wf.get('name', ''):32} {'workflow':8} {'':11} ({props})  {wf.get('description', '')}"
            )
    return (
        "\n".join(lines)
        if lines
        else "no catalogue published yet (start an executor: whale run executor --pool NAME)"
    )


def _list(args: argparse.Namespace) -> int:
    catalogs = asyncio.run(read_catalogs(WhaleSettings()))
    if args.pool:
        catalogs = {k: v for k, v in catalogs.items() if k == args.pool}
    if args.json:
        print(json.dumps(catalogs, indent=2, sort_keys=True))
    else:
        print(format_catalogs(catalogs))
    return 0


def _validate(args: argparse.Namespace) -> int:
    catalog = load_catalog(pool="validate", dirs=args.dirs)
    print(f"ok: {len(catalog.actions)} actions, {len(catalog.workflows)} workflows")
    return 0
