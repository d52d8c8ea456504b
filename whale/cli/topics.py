"""``whale topics ensure|list``: the topic contract on the broker."""

from __future__ import annotations

import argparse
from pathlib import Path

from whale import asyncapi
from whale.admin import ensure_topics
from whale.settings import WhaleSettings
from whale.topics import TOPICS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("topics", help="create or check Whale's Kafka topics")
    actions = parser.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    ensure = actions.add_parser("ensure", help="create missing topics, check existing ones (idempotent)")
    ensure.set_defaults(handler=_ensure)
    listing = actions.add_parser("list", help="print the topic contract")
    listing.set_defaults(handler=_list)
    doc = actions.add_parser("asyncapi", help="print the AsyncAPI 3 document of the contract")
    doc.add_argument("--schemas", default="schemas", help="the schemas directory (default: schemas)")
    doc.set_defaults(handler=_asyncapi)


def _ensure(args: argparse.Namespace) -> int:
    settings = WhaleSettings()
    for report in ensure_topics(settings):
        print(f"{report.name:28} {report.action}{'  ' + report.detail if report.detail else ''}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for spec in TOPICS:
        kind = "compacted" if spec.compacted else f"retention {spec.retention_ms // 86_400_000}d"
        print(f"{spec.name:28} {spec.partitions:>2} partitions  {kind:16} {spec.description}")
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    print(asyncapi.render(Path(args.schemas)), end="")
    return 0
