"""``whale infra up|down|status``: the local Kafka broker and Elasticsearch node."""

from __future__ import annotations

import argparse
import json
import sys

from whale.infra.settings import InfraSettings
from whale.infra.stack import COMPONENTS, StackStatus
from whale.settings import WhaleSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``infra`` with its ``up``, ``down`` and ``status`` sub-commands."""
    parser = sub.add_parser(
        "infra",
        help="run the local Kafka and Elasticsearch (fetched with Maven on first use)",
        description="Run one Kafka broker and one Elasticsearch node on this machine. Components whose "
        "address is set by WHALE_KAFKA_BOOTSTRAP / WHALE_ES_URL are the user's own: only checked.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start what is not running and wait until it answers")
    up.add_argument("--json", action="store_true", help="print the result as JSON")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop what `whale infra up` started")
    down.add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help=f"only these ({', '.join(COMPONENTS)}); default all",
    )
    down.add_argument("--json", action="store_true", help="print the result as JSON")
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="show each component with its address and state")
    status.add_argument("--json", action="store_true", help="print the result as JSON")
    status.set_defaults(handler=_status)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print(result: StackStatus, as_json: bool) -> None:
    print(json.dumps(result.to_dict(), indent=2) if as_json else result.describe(), flush=True)


def _up(args: argparse.Namespace) -> int:
    from whale.infra import stack

    result = stack.up(WhaleSettings(), InfraSettings(), progress=_progress)
    _print(result, args.json)
    return 0


def _down(args: argparse.Namespace) -> int:
    from whale.infra import stack

    result = stack.down(WhaleSettings(), InfraSettings(), args.components or None, progress=_progress)
    _print(result, args.json)
    return 0


def _status(args: argparse.Namespace) -> int:
    """Exit status 0 when every component is usable, 3 (like LSB ``status``) otherwise."""
    from whale.infra import stack

    result = stack.status(WhaleSettings(), InfraSettings())
    _print(result, args.json)
    return 0 if result.usable else 3
