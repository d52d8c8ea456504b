"""``whale approvals list|show|approve|deny`` and ``whale runs list|show|cancel|retry``: people in the
loop, through the event center's ``/approvals`` and ``/runs`` API (``WHALE_TOKEN`` identifies the
caller; the answer records that identity, not a name typed on the command line)."""

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
    retry = run_actions.add_parser("retry", help="re-run a failed workflow run from its failed tasks")
    retry.add_argument("run_id")
    _common(retry)
    retry.set_defaults(handler=_run_retry)


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


def _run_retry(args: argparse.Namespace) -> int:
    code, body = _answer(_request("POST", _url(args, "runs", args.run_id, "retry")), args.json)
    if code == 0 and not args.json:
        print(f"{args.run_id}: retried as {body.get('run_id')}")
    return code
