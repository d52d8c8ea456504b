"""``whale approvals list|show|approve|deny``, ``whale runs list|show|cancel|pause|resume|retry``, ``whale dlq
list|show|redrive`` and ``whale events replay``: people in the loop, through the event center's
``/approvals``, ``/runs``, ``/dlq`` and ``/replays`` API (``WHALE_TOKEN`` identifies the caller; what
it does records that identity, not a name typed on the command line)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from whale.cli.events import _answer, _common, _request
from whale.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    approvals = sub.add_parser("approvals", help="list, show and answer the approvals workflows wait for")
    actions = approvals.add_subparsers(dest="approvals_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="pending approvals, oldest first")
    _common(listing)
    listing.set_defaults(handler=_approvals_list)
    show = actions.add_parser("show", help="one approval (question, approvers, response schema, answer)")
    show.add_argument("approval_id", help="<run id>.<task>")
    _common(show)
    show.set_defaults(handler=_approval_show)
    for decision in ("approve", "deny"):
        answer = actions.add_parser(decision, help=f"{decision} a pending approval")
        answer.add_argument("approval_id", help="<run id>.<task>")
        answer.add_argument("--comment")
        answer.add_argument("--response", help="the answer as JSON, checked against the approval's schema")
        _common(answer)
        answer.set_defaults(handler=_approval_answer, decision=decision)

    runs = sub.add_parser("runs", help="list, show, cancel and retry workflow and action runs")
    run_actions = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    run_list = run_actions.add_parser("list", help="runs, newest first")
    run_list.add_argument(
        "--state",
        default="all",
        choices=[
            "active",
            "running",
            "waiting",
            "succeeded",
            "failed",
            "timed_out",
            "abandoned",
            "cancelled",
            "all",
        ],
    )
    run_list.add_argument("--kind", choices=["workflow", "action"])
    run_list.add_argument("--name")
    run_list.add_argument("--pool")
    run_list.add_argument("--limit", type=int, default=100)
    _common(run_list)
    run_list.set_defaults(handler=_runs_list)
    run_show = run_actions.add_parser("show", help="one run: each task's state, attempts, timings, output")
    run_show.add_argument("run_id")
    _common(run_show)
    run_show.set_defaults(handler=_run_show)
    cancel = run_actions.add_parser("cancel", help="cancel a running run (running tasks are stopped)")
    cancel.add_argument("run_id")
    cancel.add_argument("--comment")
    _common(cancel)
    cancel.set_defaults(handler=_run_cancel)
    for verb in ("pause", "resume"):
        control = run_actions.add_parser(
            verb, help=f"{verb} a workflow run (a paused run starts no new task)"
        )
        control.add_argument("run_id")
        control.add_argument("--comment")
        _common(control)
        control.set_defaults(handler=_run_control, verb=verb)
    retry = run_actions.add_parser("retry", help="re-run a failed workflow run from its failed tasks")
    retry.add_argument("run_id")
    _common(retry)
    retry.set_defaults(handler=_run_retry)

    dlq = sub.add_parser("dlq", help="list, show and redrive dead letters")
    dlq_actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_actions.add_parser("list", help="dead letters, newest first")
    _letter_filter(dlq_list)
    dlq_list.add_argument("--size", type=int, default=50)
    _common(dlq_list)
    dlq_list.set_defaults(handler=_dlq_list)
    dlq_show = dlq_actions.add_parser("show", help="one dead letter (reason, origin, the event)")
    dlq_show.add_argument("letter_id")
    _common(dlq_show)
    dlq_show.set_defaults(handler=_dlq_show)
    redrive = dlq_actions.add_parser(
        "redrive", help="send dead letters back to the topic they came from (each at most once)"
    )
    redrive.add_argument("letter_id", nargs="*", help="dead letter ids (or use a filter, or --all)")
    _letter_filter(redrive)
    redrive.add_argument("--all", action="store_true", help="every dead letter (up to --limit)")
    redrive.add_argument("--limit", type=int, default=100)
    _common(redrive)
    redrive.set_defaults(handler=_dlq_redrive)


def add_replay(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``whale events replay`` (registered by :mod:`whale.cli.events`)."""
    replay = actions.add_parser("replay", help="replay stored events onto the bus (dry-run unless --live)")
    replay.add_argument("--since", required=True, help="RFC 3339 time")
    replay.add_argument("--until", help="RFC 3339 time")
    replay.add_argument("--filter", action="append", default=[], metavar="NAME=VALUE",
                        help="type=..., source=..., subject=..., q=..., or an extension name=value (repeatable)")  # fmt: skip
    replay.add_argument("--live", action="store_true", help="rules really act (default: dry-run)")
    replay.add_argument("--limit", type=int, default=1000)
    _common(replay)
    replay.set_defaults(handler=_replay)


def _letter_filter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", help="words of the reason")
    parser.add_argument("--topic", help="the topic they came from")
    parser.add_argument("--group", help="the consumer group that gave up")
    parser.add_argument("--since")
    parser.add_argument("--until")


def _url(args: argparse.Namespace, *parts: str) -> str:
    return "/".join([args.url.rstrip("/"), *(quote(p, safe="") for p in parts)])


def _approvals_list(args: argparse.Namespace) -> int:
    code, body = _answer(_request("GET", _url(args, "approvals")), args.json)
    if code == 0 and not args.json:
        for item in body.get("approvals", []):
            deadline = item.get("deadline") or "no deadline"
            print(f"{item['id']}  {item.get('workflow')}  until {deadline}  {item.get('question') or ''}")
        print(f"{body.get('total', 0)} pending", file=sys.stderr)
    return code


def _approval_show(args: argparse.Namespace) -> int:
    code, body = _answer(_request("GET", _url(args, "approvals", args.approval_id)), args.json)
    if code == 0 and not args.json:
        print(json.dumps(body, indent=2))
    return code


def _approval_answer(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"decision": args.decision, "comment": args.comment}
    if args.response is not None:
        try:
            payload["response"] = json.loads(args.response)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--response is not JSON: {exc.msg}", field="response") from None
    response = _request("POST", _url(args, "approvals", args.approval_id), json=payload)
    code, body = _answer(response, args.json)
    if code == 0 and not args.json:
        who = (body.get("answered_by") or {}).get("name")
        print(f"{args.approval_id}: {args.decision}d by {who} (event {body.get('event_id')})")
    return code


def _runs_list(args: argparse.Namespace) -> int:
    params: dict[str, str | int] = {"state": args.state, "limit": args.limit}
    for name in ("kind", "name", "pool"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    code, body = _answer(_request("GET", _url(args, "runs"), params=params), args.json)
    if code == 0 and not args.json:
        for run in body.get("runs", []):
            print(
                f"{run['run_id']}  {run.get('state'):<10} {run.get('kind'):<8} {run.get('name')}  "
                f"pool={run.get('pool')}  started {run.get('started_at')}"
            )
        print(f"{len(body.get('runs', []))} of {body.get('total', 0)} runs", file=sys.stderr)
    return code


def _run_show(args: argparse.Namespace) -> int:
    code, body = _answer(_request("GET", _url(args, "runs", args.run_id)), args.json)
    if code == 0 and not args.json:
        print(f"{body['run_id']}  {body.get('kind')} {body.get('name')}  {body.get('state')}")
        print(f"  started {body.get('started_at')}  finished {body.get('finished_at')}")
        if body.get("retry_of"):
            print(f"  retry of {body['retry_of']}")
        for name, task in (body.get("tasks") or {}).items():
            reused = f" (reused from {task['reused_from']})" if task.get("reused_from") else ""
            print(
                f"  {name:<20} {task.get('status'):<10} attempt {task.get('attempt') or '-'}  "
                f"{task.get('duration_ms') or 0} ms{reused}"
            )
        if body.get("error"):
            print(f"  error: {body['error'].get('message')}")
    return code


def _run_cancel(args: argparse.Namespace) -> int:
    response = _request("POST", _url(args, "runs", args.run_id, "cancel"), json={"comment": args.comment})
    code, body = _answer(response, args.json)
    if code == 0 and not args.json:
        print(f"{args.run_id}: cancel requested (event {body.get('event_id')})")
    return code


def _run_control(args: argparse.Namespace) -> int:
    response = _request("POST", _url(args, "runs", args.run_id, args.verb), json={"comment": args.comment})
    code, body = _answer(response, args.json)
    if code == 0 and not args.json:
        print(f"{args.run_id}: {args.verb} requested (event {body.get('event_id')})")
    return code


def _run_retry(args: argparse.Namespace) -> int:
    code, body = _answer(_request("POST", _url(args, "runs", args.run_id, "retry")), args.json)
    if code == 0 and not args.json:
        print(f"{args.run_id}: retried as {body.get('run_id')}")
    return code


def _letter_line(letter: dict[str, Any]) -> str:
    event = letter.get("event") if isinstance(letter.get("event"), dict) else {}
    assert isinstance(event, dict)
    return (
        f"{letter['id']}  {letter.get('time')}  {letter.get('topic')} <- {letter.get('group')}  "
        f"{event.get('type', '?')}  {letter.get('reason')}"
    )


def _filters(args: argparse.Namespace) -> dict[str, str]:
    return {n: getattr(args, n) for n in ("reason", "topic", "group", "since", "until") if getattr(args, n)}


def _dlq_list(args: argparse.Namespace) -> int:
    params: dict[str, str | int] = {**_filters(args), "size": args.size}
    code, body = _answer(_request("GET", _url(args, "dlq"), params=params), args.json)
    if code == 0 and not args.json:
        for letter in body.get("dead_letters", []):
            print(_letter_line(letter))
    return code


def _dlq_show(args: argparse.Namespace) -> int:
    code, body = _answer(_request("GET", _url(args, "dlq", args.letter_id)), args.json)
    if code == 0 and not args.json:
        print(json.dumps(body, indent=2))
    return code


def _dlq_redrive(args: argparse.Namespace) -> int:
    if len(args.letter_id) == 1 and not _filters(args) and not args.all:
        response = _request("POST", _url(args, "dlq", args.letter_id[0], "redrive"))
        code, body = _answer(response, args.json)
        if code == 0 and not args.json:
            print(f"{body['id']}: redriven to {body['topic']} as {body['event_id']}")
        return code
    payload: dict[str, Any] = {**_filters(args), "ids": args.letter_id, "all": args.all, "limit": args.limit}
    code, body = _answer(_request("POST", _url(args, "dlq", "redrive"), json=payload), args.json)
    if code == 0 and not args.json:
        for done in body.get("redriven", []):
            print(f"{done['id']}: redriven to {done['topic']} as {done['event_id']}")
        for skipped in body.get("skipped", []):
            print(f"{skipped['id']}: skipped: {skipped['why']}")
    return code


def _replay(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {
        "since": args.since,
        "mode": "live" if args.live else "dry",
        "limit": args.limit,
    }
    if args.until:
        payload["until"] = args.until
    ext: dict[str, str] = {}
    for item in args.filter:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--filter {item!r} must be NAME=VALUE", field="filter")
        if name == "type":
            payload.setdefault("type", []).append(value)
        elif name in ("source", "subject", "q"):
            payload[name] = value
        else:
            ext[name] = value
    if ext:
        payload["ext"] = ext
    code, body = _answer(_request("POST", _url(args, "replays"), json=payload), args.json)
    if code == 0 and not args.json:
        more = " (more matched: raise --limit)" if body.get("more") else ""
        print(f"{body['replay_id']}: {body['replayed']} events replayed ({body['mode']}){more}")
        print(f"what they caused: whale events trace {body['replay_id']}", file=sys.stderr)
    return code
