"""The ``whale`` command line.

Built-in command groups live in this package (``infra``, ``topics``, ``run``, ``up``). Services add
their own groups through the ``whale.cli`` entry-point group: each entry point names a function
``register(subparsers)`` that adds one sub-command, so this package never imports a service.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from whale.errors import WhaleError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from whale.cli import events, infra, people, run, topics, up

    parser = argparse.ArgumentParser(prog="whale", description="Whale operations automation platform")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (infra, topics, run, up, events, people):
        module.register(sub)
    for ep in sorted(entry_points(group="whale.cli"), key=lambda e: e.name):
        ep.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except WhaleError as exc:
        print(f"whale: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
