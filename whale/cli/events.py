"""``whale events send|search|trace`` and ``whale todos list|claim|resolve``: the event center's HTTP API
from the command line (a user tool, not a service: it talks to the front door like any client)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

import httpx

from whale.errors import ConfigError, WhaleError

DEFAULT_URL = "http://127.0.0.1:8080"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("events", help="send, search and trace events through the event center")
    actions = parser.add_subparsers(dest="events_command", required=True, metavar="ACTION")

    send = actions.add_parser("send", help="post a CloudEvent (or a JSON list of them) from a file or -")
    send.add_argument("file", help="JSON file with one event or a list; - reads standard input")
    send.add_argument("--token", default=os.environ.get("WHALE_TOKEN"), help="bearer token (env WHALE_TOKEN)")
    _common(send)
    send.set_defaults(handler=_send)

    search = actions.add_parser("search", help="search stored events, newest first")
    search.add_argument("--type", action="append", default=[], help="event type (repeatable)")
    search.add_argument("--source")
    search.add_argument("--source-prefix")
    search.add_argument("--subject")
    search.add_argument("--correlationid")
    search.add_argument("--since", help="RFC 3339 time")
    search.add_argument("--until", help="RFC 3339 time")
    search.add_argument("--topic")
    search.add_argument("-q", "--text", help="free text over data")
    search.add_argument("--size", type=int, default=20)
    _common(search)
    search.set_defaults(handler=_search)

    schemas = actions.add_parser(
        "register-schemas", help="PUT every <type>.json of a directory to /schemas/<type>"
    )
    schemas.add_argument("directory", help="directory of JSON Schemas named <event type>.json")
    _common(schemas)
    schemas.set_defaults(handler=_register_schemas)

    trace = actions.add_parser("trace", help="print every event of a chain in causal order")
    trace.add_argument("correlation_id")
    _common(trace)
    trace.set_defaults(handler=_trace)

    from whale.cli.people import add_replay  # people's commands build on this module's helpers

    add_replay(actions)

    todos = sub.add_parser("todos", help="list, claim and resolve to-do items")
    todo_actions = todos.add_subparsers(dest="todos_command", required=True, metavar="ACTION")
    listing = todo_actions.add_parser("list", help="list to-do items")
    listing.add_argument(
        "--status", default="active", choices=["active", "open", "claimed", "resolved", "all"]
    )
    listing.add_argument("--limit", type=int, default=100, help="items per page (1-1000, default 100)")
    listing.add_argument("--offset", type=int, default=0, help="items to skip (the next page's offset)")
    listing.add_argument("--all", action="store_true", help="fetch every page")
    _common(listing)
    listing.set_defaults(handler=_todo_list)
    for op in ("claim", "unclaim", "comment", "resolve"):
        change = todo_actions.add_parser(op, help=f"{op} a to-do item")
        change.add_argument("todo_id")
        change.add_argument("--by", default=os.environ.get("USER") or "cli", help="who (default: $USER)")
        change.add_argument("--comment")
        _common(change)
        change.set_defaults(handler=_todo_change, op=op)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("WHALE_EVENT_CENTER_URL", DEFAULT_URL),
        help=f"event center URL (env WHALE_EVENT_CENTER_URL, default {DEFAULT_URL})",
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


def auth_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus ``Authorization: Bearer $WHALE_TOKEN`` (a personal token or OIDC JWT) when set."""
    out = dict(headers or {})
    token = os.environ.get("WHALE_TOKEN", "").strip()
    if token and not any(k.lower() == "authorization" for k in out):
        out["Authorization"] = f"Bearer {token}"
    return out


def _request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    kwargs["headers"] = auth_headers(kwargs.get("headers"))
    try:
        return httpx.request(method, url, timeout=30.0, **kwargs)
    except httpx.HTTPError as exc:
        raise WhaleError(f"cannot reach the event center at {url}: {exc}") from None


def _answer(response: httpx.Response, raw: bool) -> tuple[int, Any]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400 or raw:
        print(json.dumps(body, indent=2) if not isinstance(body, str) else body)
    return (0 if response.status_code < 400 else 1), body


def load_events(text: str) -> Any:
    """The JSON to post; ``id`` and ``specversion`` are filled in when a hand-written event lacks them."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field="file"
        ) from None
    for event in doc if isinstance(doc, list) else [doc]:
        if isinstance(event, dict):
            event.setdefault("specversion", "1.0")
            event.setdefault("id", str(uuid.uuid4()))
    return doc


def _send(args: argparse.Namespace) -> int:
    if args.file == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.file}: {exc.strerror}", field="file") from None
    doc = load_events(text)
    kind = "application/cloudevents-batch+json" if isinstance(doc, list) else "application/cloudevents+json"
    headers = {"Content-Type": kind}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    response = _request("POST", f"{args.url.rstrip('/')}/events", content=json.dumps(doc), headers=headers)
    code, body = _answer(response, args.json)
    if code == 0 and not args.json:
        if isinstance(doc, list):
            print(f"accepted {body.get('accepted')} of {len(doc)} events")
        else:
            print(f"accepted {body.get('source')} {body.get('id')} (correlation id: {doc.get('id')})")
    return code


def register_schemas(url: str, directory: str) -> list[tuple[str, int, str]]:
    """PUT each ``<type>.json`` of ``directory`` to ``/schemas/<type>``: (type, HTTP status, detail)."""
    import pathlib

    out: list[tuple[str, int, str]] = []
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable JSON file: {exc}", field="directory") from None
        response = _request("PUT", f"{url.rstrip('/')}/schemas/{path.stem}", json=schema)
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text}
        detail = (
            f"version {body.get('version')}" if response.status_code < 400 else str(body.get("message", body))
        )
        out.append((path.stem, response.status_code, detail))
    return out


def _register_schemas(args: argparse.Namespace) -> int:
    results = register_schemas(args.url, args.directory)
    for type_name, status, detail in results:
        print(f"{type_name:40} {status} {detail}")
    return 0 if all(status < 400 for _, status, _ in results) else 1


def _line(found: dict[str, Any], indent: int = 0, *, correlation: bool = False) -> str:
    event = found.get("event") or {}
    if not isinstance(event, dict):
        event = {}
    chain = f" corr={event.get('correlationid') or event.get('id', '')}" if correlation else ""
    return (
        f"{'  ' * indent}{event.get('time', found.get('time', '')):<32} {event.get('type', '?'):<32} "
        f"{event.get('subject') or '':<20} {event.get('source', '')} {event.get('id', '')}{chain}"
    )


def _search(args: argparse.Namespace) -> int:
    params: list[tuple[str, str | int]] = [("type", t) for t in args.type]
    for name in ("source", "source_prefix", "subject", "correlationid", "since", "until", "topic"):
        if getattr(args, name):
            params.append((name, getattr(args, name)))
    if args.text:
        params.append(("q", args.text))
    params.append(("size", args.size))
    code, body = _answer(_request("GET", f"{args.url.rstrip('/')}/events", params=params), args.json)
    if code == 0 and not args.json:
        for found in body.get("events", []):
            print(_line(found, correlation=True))  # what `whale events trace` takes
    return code


def not_a_correlation_id(wanted: str, steps: list[dict[str, Any]]) -> str | None:
    """Why ``wanted`` is not a chain's correlation id (the hint to print), or None when it is one.

    The trace API also answers an event's own id; when that event belongs to another chain (it
    carries a different ``correlationid``), its trace is that one event: point to the chain instead.
    """
    events: list[dict[str, Any]] = [s["event"] for s in steps if isinstance(s.get("event"), dict)]
    if any(e.get("correlationid") == wanted for e in events):
        return None
    for event in events:
        chain = event.get("correlationid")
        if event.get("id") == wanted and chain and chain != wanted:
            return (
                f"{wanted} is the id of an event ({event.get('type')}), not a correlation id; "
                f"its chain is: whale events trace {chain}"
            )
    return None


def _trace(args: argparse.Namespace) -> int:
    url = f"{args.url.rstrip('/')}/traces/{args.correlation_id}"
    response = _request("GET", url)
    if response.status_code == 404 and not args.json:
        print(
            f"no event with correlation id {args.correlation_id!r} is indexed; correlation ids are the "
            "corr= column of `whale events search` (an alert episode's is alert-...)",
            file=sys.stderr,
        )
        return 1
    code, body = _answer(response, args.json)
    if code == 0 and not args.json:
        steps = body.get("events", [])
        hint = not_a_correlation_id(args.correlation_id, steps)
        if hint is not None:
            print(hint, file=sys.stderr)
            return 2
        for step in steps:
            print(_line(step, int(step.get("depth") or 0)))
    return code


def _todo_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000 or args.offset < 0:
        raise ConfigError("--limit must be 1-1000 and --offset >= 0", field="limit")
    offset = args.offset
    while True:
        params: dict[str, str | int] = {"status": args.status, "limit": args.limit, "offset": offset}
        code, body = _answer(_request("GET", f"{args.url.rstrip('/')}/todos", params=params), args.json)
        if code != 0 or (args.json and not args.all):
            return code
        items, total = body.get("todos", []), int(body.get("total", 0))
        if not args.json:
            for item in items:
                who = item.get("claimed_by") or ""
                print(
                    f"{item['id']}  {item['status']:<9} x{item.get('count', 1):<4} {who:<12} "
                    f"{item.get('title', '')}"
                )
        shown = offset + len(items)
        if not args.all or not items or shown >= total:
            break
        offset = shown
    if not args.json:
        print(page_footer(args.offset if not args.all else 0, shown, total, args.limit), file=sys.stderr)
    return 0


def page_footer(first: int, shown: int, total: int, limit: int) -> str:
    """``items 1-100 of 250; next page: --offset 100 (or --all)`` under a to-do listing."""
    if shown <= first:
        return f"no items on this page ({total} in all)"
    text = f"items {first + 1}-{shown} of {total}"
    if shown < total:
        text += f"; next page: --offset {shown} --limit {limit} (or --all)"
    return text


def _todo_change(args: argparse.Namespace) -> int:
    url = f"{args.url.rstrip('/')}/todos/{args.todo_id}/{args.op}"
    code, body = _answer(_request("POST", url, json={"by": args.by, "comment": args.comment}), args.json)
    if code == 0 and not args.json:
        print(f"{body.get('id', args.todo_id)}: {body.get('status')}")
    return code
