"""``whale tokens``: sender tokens (``new``: a tokens-file entry) and personal API tokens
(``create``, ``list``, ``revoke``: records on the compacted ``whale.tokens`` topic).

Personal tokens are written to Kafka directly, so whoever can write to the cluster can make the
first admin token (the bootstrap); afterwards admins can also use ``POST /tokens``. Every change is
audited (``whale.audit.token.*``) with the actor ``cli:<user>``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
from datetime import timedelta

import yaml

from whale import audit, topics
from whale import tokens as personal
from whale.authz import Identity, Role
from whale.compacted import CompactedView, put
from whale.errors import ConfigError
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale_event_center.auth import hash_token, new_token


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tokens", help="sender tokens (new) and personal API tokens (create/list/revoke)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new", help="print a new sender token and its tokens-file entry (only the hash is stored)"
    )
    new.add_argument("--name", required=True, help="who the sender is")
    new.add_argument(
        "--source", action="append", required=True, help="a source it may publish ('prefix*' for a prefix)"
    )
    new.add_argument("--type", action="append", help="an event type glob it may publish (default: any)")
    new.add_argument("--hmac-secret-env", help="env variable holding its HMAC secret (bodies must be signed)")
    new.set_defaults(handler=_new)

    create = actions.add_parser("create", help="create a personal API token (printed once, hash stored)")
    create.add_argument("--name", required=True, help="the person or service it identifies")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "author", "admin"])
    create.add_argument("--kind", default="person", choices=["person", "service"])
    create.add_argument("--team")
    create.add_argument(
        "--grant",
        action="append",
        choices=["delegate"],
        help="delegate: may act for people (the chat adapter)",
    )
    create.add_argument("--ttl-days", type=int, default=90, help="days until it expires (0: never)")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list personal tokens (no secrets)")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a personal token (every replica refuses it at once)")
    revoke.add_argument("id")
    revoke.set_defaults(handler=_revoke)


def _new(args: argparse.Namespace) -> int:
    token = new_token()
    entry: dict[str, object] = {"name": args.name, "sha256": hash_token(token), "sources": list(args.source)}
    if args.type:
        entry["types"] = list(args.type)
    if args.hmac_secret_env:
        entry["hmac_secret_env"] = args.hmac_secret_env
    print(f"token (give it to the sender; it is not stored anywhere): {token}")
    print("tokens-file entry (append under `tokens:` in WHALE_EVENT_CENTER_TOKENS_FILE):")
    print(yaml.safe_dump([entry], sort_keys=False).rstrip())
    return 0


def cli_identity() -> Identity:
    return Identity(name=f"cli:{getpass.getuser()}", kind="person", role=Role.admin, via="kafka")


async def _records(settings: WhaleSettings) -> dict[str, dict[str, object]]:
    view = CompactedView(settings, topics.TOKENS)
    await view.start()
    try:
        return {k: dict(e.data) for k, e in view.items().items() if isinstance(e.data, dict)}
    finally:
        await view.stop()


async def _write(settings: WhaleSettings, record: dict[str, object], action: str, before: object) -> None:
    producer = EventProducer(settings, client_id="whale-cli")
    try:
        await put(producer, topics.TOKENS, str(record["id"]), personal.to_event(record))
        after = personal.public(record)
        await audit.record(producer, cli_identity(), "token", action, str(record["id"]), before, after)
    finally:
        await asyncio.to_thread(producer.close)


def _create(args: argparse.Namespace) -> int:
    token_id, token = personal.new_personal_token()
    ttl = timedelta(days=args.ttl_days) if args.ttl_days > 0 else None
    try:
        record = personal.new_record(
            token, token_id, name=args.name, role=Role.parse(args.role), kind=args.kind, team=args.team,
            ttl=ttl, created_by=cli_identity().name, grants=tuple(args.grant or ()),
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc), field="name") from None
    asyncio.run(_write(WhaleSettings(), record, "created", None))
    print(f"token {token_id} for {args.name} ({args.role}), expires {record['expires'] or 'never'}:")
    print(token)
    print("(shown once; use it as WHALE_TOKEN or 'Authorization: Bearer <token>')")
    return 0


def _list(args: argparse.Namespace) -> int:
    for token_id, record in sorted(asyncio.run(_records(WhaleSettings())).items()):
        state = "revoked" if record.get("revoked") else f"expires {record.get('expires') or 'never'}"
        print(
            f"{token_id:14} {record.get('name')!s:30} {record.get('role')!s:9} {record.get('kind')!s:8} {state}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    settings = WhaleSettings()
    record = asyncio.run(_records(settings)).get(args.id)
    if record is None:
        raise ConfigError(f"no personal token {args.id!r} (see `whale tokens list`)", field="id")
    asyncio.run(
        _write(settings, personal.revoked(record, cli_identity().name), "revoked", personal.public(record))
    )
    print(f"token {args.id} revoked")
    return 0
