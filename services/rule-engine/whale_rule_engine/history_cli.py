"""``whale rules history|diff|rollback``: a rule's saved versions through the event center's API
(``/rules/{id}/versions``, ``/diff``, ``/rollback``), authenticated with ``$WHALE_TOKEN``."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from whale.cli.events import _answer, _common, _request


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser("history", help="a rule's saved versions, newest first (event center)")
    history.add_argument("rule_id")
    _common(history)
    history.set_defaults(handler=_history)
    diff = commands.add_parser("diff", help="what changed between two versions of a rule (event center)")
    diff.add_argument("rule_id")
    diff.add_argument("old", type=int, help="the older version")
    diff.add_argument("new", type=int, help="the newer version")
    _common(diff)
    diff.set_defaults(handler=_diff)
    rollback = commands.add_parser(
        "rollback", help="re-save an earlier version as the rule's next version (event center, author)"
    )
    rollback.add_argument("rule_id")
    rollback.add_argument("version", type=int, help="the version to restore")
    rollback.add_argument("--if-match", help="only if the rule is at this version now")
    _common(rollback)
    rollback.set_defaults(handler=_rollback)


def _url(args: argparse.Namespace, tail: str = "") -> str:
    return f"{args.url.rstrip('/')}/rules/{quote(args.rule_id, safe='')}{tail}"


def _history(args: argparse.Namespace) -> int:
    code, body = _answer(_request("GET", _url(args, "/versions")), args.json)
    if code or args.json:
        return code
    for version in body["versions"]:
        actor = version.get("actor") or {}
        who = actor.get("name", "(not indexed yet)")
        note = f"  rollback of v{version['rolled_back_from']}" if "rolled_back_from" in version else ""
        rule = version["rule"]
        state = "" if rule.get("enabled", True) else "  (disabled)"
        print(
            f"v{version['version']:<4} {version.get('time') or '-':32} {who}{note}{state}  {rule.get('description', '')}"
        )
    return 0


def _diff(args: argparse.Namespace) -> int:
    params = {"from": args.old, "to": args.new}
    code, body = _answer(_request("GET", _url(args, "/diff"), params=params), args.json)
    if code or args.json:
        return code
    print(body["unified"] or f"versions {args.old} and {args.new} of {args.rule_id} do not differ", end="")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    headers = {"If-Match": str(args.if_match)} if args.if_match else None
    response = _request("POST", _url(args, "/rollback"), json={"version": args.version}, headers=headers)
    code, body = _answer(response, args.json)
    if code or args.json:
        return code
    rule: dict[str, Any] = body["rule"]
    print(f"{rule['id']}: version {args.version} restored as version {rule['version']}")
    for warning in body.get("warnings") or []:
        print(f"warning: {json.dumps(warning) if not isinstance(warning, str) else warning}")
    return 0
