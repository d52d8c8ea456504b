"""``whale tokens new``: make a sender token for the event center and the tokens-file entry for it."""

from __future__ import annotations

import argparse

import yaml

from whale_event_center.auth import hash_token, new_token


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tokens", help="event-center sender tokens")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new", help="print a new token and its tokens-file entry (only the hash is stored)"
    )
    new.add_argument("--name", required=True, help="who the sender is")
    new.add_argument(
        "--source", action="append", required=True, help="a source it may publish ('prefix*' for a prefix)"
    )
    new.add_argument("--hmac-secret-env", help="env variable holding its HMAC secret (bodies must be signed)")
    new.set_defaults(handler=_new)


def _new(args: argparse.Namespace) -> int:
    token = new_token()
    entry: dict[str, object] = {"name": args.name, "sha256": hash_token(token), "sources": list(args.source)}
    if args.hmac_secret_env:
        entry["hmac_secret_env"] = args.hmac_secret_env
    print(f"token (give it to the sender; it is not stored anywhere): {token}")
    print("tokens-file entry (append under `tokens:` in WHALE_EVENT_CENTER_TOKENS_FILE):")
    print(yaml.safe_dump([entry], sort_keys=False).rstrip())
    return 0
