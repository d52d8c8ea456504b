"""``whale subscriptions apply|list|pause|resume|delete``: manage push subscriptions on the compacted
``whale.subscriptions`` topic (registered through the ``whale.cli`` entry-point group)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from whale import topics
from whale.compacted import CompactedView, delete, put
from whale.errors import ConfigError
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.subscriptions import Subscription, from_record, load_subscriptions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("subscriptions", help="manage push subscriptions (whale.subscriptions)")
    actions = parser.add_subparsers(dest="subscriptions_command", required=True, metavar="ACTION")
    apply = actions.add_parser("apply", help="validate a YAML file and write its subscriptions")
    apply.add_argument("file", type=Path)
    apply.set_defaults(handler=_apply)
    listing = actions.add_parser("list", help="print the stored subscriptions")
    listing.set_defaults(handler=_list)
    for name, text in (("pause", "stop delivering (events wait)"), ("resume", "deliver again")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id")
        action.set_defaults(handler=_pause if name == "pause" else _resume)
    remove = actions.add_parser("delete", help="delete a subscription")
    remove.add_argument("id")
    remove.set_defaults(handler=_delete)


async def apply_subscriptions(settings: WhaleSettings, subs: list[Subscription]) -> None:
    """Write each subscription's record (acknowledged by Kafka)."""
    producer = EventProducer(settings, client_id="whale-cli")
    try:
        for s in subs:
            await put(producer, topics.SUBSCRIPTIONS, s.id, s.to_record())
    finally:
        await asyncio.to_thread(producer.close)


async def _stored(settings: WhaleSettings) -> dict[str, Subscription]:
    view = CompactedView(settings, topics.SUBSCRIPTIONS)
    await view.start()
    try:
        return {key: from_record(record) for key, record in view.items().items()}
    finally:
        await view.stop()


def _apply(args: argparse.Namespace) -> int:
    subs = load_subscriptions(args.file)
    asyncio.run(apply_subscriptions(WhaleSettings(), subs))
    for s in subs:
        print(f"{s.id:32} applied  {'paused' if s.paused else 'active'}  -> {s.endpoint}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for key, s in sorted(asyncio.run(_stored(WhaleSettings())).items()):
        print(f"{key:32} {'paused' if s.paused else 'active':7} {s.endpoint}")
    return 0


def _set_paused(sid: str, paused: bool) -> int:
    settings = WhaleSettings()
    stored = asyncio.run(_stored(settings))
    if sid not in stored:
        raise ConfigError(
            f"no subscription {sid!r}; known: {', '.join(sorted(stored)) or 'none'}", field="id"
        )
    asyncio.run(apply_subscriptions(settings, [stored[sid].model_copy(update={"paused": paused})]))
    print(f"{sid} {'paused' if paused else 'resumed'}")
    return 0


def _pause(args: argparse.Namespace) -> int:
    return _set_paused(args.id, True)


def _resume(args: argparse.Namespace) -> int:
    return _set_paused(args.id, False)


def _delete(args: argparse.Namespace) -> int:
    async def run() -> None:
        producer = EventProducer(WhaleSettings(), client_id="whale-cli")
        try:
            await delete(producer, topics.SUBSCRIPTIONS, args.id)
        finally:
            await asyncio.to_thread(producer.close)

    asyncio.run(run())
    print(f"{args.id} deleted")
    return 0
