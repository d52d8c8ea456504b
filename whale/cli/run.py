"""``whale run <service>``: start one service in the foreground.

Services register themselves in the ``whale.services`` entry-point group with a
``main(argv: list[str]) -> int`` function, so this package never imports a service.
"""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint, entry_points

from whale.errors import ConfigError


def services() -> dict[str, EntryPoint]:
    """Every installed service, by name."""
    return {ep.name: ep for ep in entry_points(group="whale.services")}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("run", help="run one Whale service in the foreground")
    parser.add_argument("service", help="service name (see `whale run --list`)", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the installed services")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the service")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    known = services()
    if args.list or not args.service:
        for name in sorted(known):
            print(name)
        return 0
    if args.service not in known:
        raise ConfigError(
            f"unknown service {args.service!r}; installed: {', '.join(sorted(known)) or 'none'}",
            field="service",
        )
    main = known[args.service].load()
    return int(main(list(args.args)))
