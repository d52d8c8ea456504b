"""``whale events`` / ``whale todos``: what the CLI posts and prints (a local HTTP server stands in)."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from whale.cli import events
from whale.errors import ConfigError


class Recorder(BaseHTTPRequestHandler):
    calls: list[dict[str, Any]] = []

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.calls.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self._reply(202, {"status": "accepted", "id": "x", "source": "s"})

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.calls.append({"method": "PATCH", "path": self.path, "body": body})
        self._reply(200, {"id": self.path.rsplit("/", 1)[-1], "status": "claimed", **body})

    def do_GET(self) -> None:
        self.calls.append({"path": self.path})
        url = urlsplit(self.path)
        if url.path == "/todos":
            self._reply(200, _todos(parse_qs(url.query)))
            return
        if url.path == "/traces/missing":
            self._reply(404, {"error": "no event"})
            return
        event = {"type": "t.one", "id": "1", "source": "s", "time": "2026-01-01T00:00:00Z"}
        if url.path == "/traces/ev-2":  # the id of an event in another chain
            event = {**event, "id": "ev-2", "correlationid": "alert-c1"}
        if url.path == "/events":
            event = {**event, "correlationid": "alert-c1"}
        self._reply(200, {"correlation_id": "c", "events": [{"event": event, "depth": 0}]})

    def log_message(self, *args: Any) -> None:
        pass


def _todos(query: dict[str, list[str]]) -> dict[str, Any]:
    items = [{"id": f"t{i:03}", "status": "open", "title": f"item {i}"} for i in range(250)]
    offset, limit = int(query["offset"][0]), int(query["limit"][0])
    return {"todos": items[offset : offset + limit], "total": len(items), "offset": offset}


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    events.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_send_posts_a_structured_event_filling_id_and_specversion(server: str, tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"type": "t.one", "source": "cli/test", "data": {"a": 1}}))
    args = parse(["events", "send", str(path), "--url", server, "--token", "tok"])
    assert args.handler(args) == 0
    [call] = Recorder.calls
    assert call["path"] == "/events"
    assert call["headers"]["Content-Type"] == "application/cloudevents+json"
    assert call["headers"]["Authorization"] == "Bearer tok"
    assert call["body"]["specversion"] == "1.0"
    assert call["body"]["id"]


def test_send_posts_a_list_as_a_batch(server: str, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps([{"type": "t", "source": "s"}, {"type": "t", "source": "s"}]))
    args = parse(["events", "send", str(path), "--url", server])
    assert args.handler(args) == 0
    assert Recorder.calls[0]["headers"]["Content-Type"] == "application/cloudevents-batch+json"


def test_send_refuses_a_file_that_is_not_json_naming_where() -> None:
    with pytest.raises(ConfigError, match="line 1 column 2"):
        events.load_events("{oops")


def test_trace_prints_the_chain(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["events", "trace", "abc", "--url", server])
    assert args.handler(args) == 0
    assert Recorder.calls[0]["path"] == "/traces/abc"
    assert "t.one" in capsys.readouterr().out


def test_search_passes_filters_as_query_parameters(server: str) -> None:
    args = parse(["events", "search", "--type", "a", "--type", "b", "--subject", "h1", "--url", server])
    args.handler(args)
    assert Recorder.calls[0]["path"] == "/events?type=a&type=b&subject=h1&size=20"


def test_search_shows_each_events_correlation_id(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["events", "search", "--url", server])
    assert args.handler(args) == 0
    assert "corr=alert-c1" in capsys.readouterr().out


def test_trace_refuses_an_event_id_of_another_chain_and_names_the_chain(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["events", "trace", "ev-2", "--url", server])
    assert args.handler(args) == 2
    err = capsys.readouterr().err
    assert "not a correlation id" in err and "whale events trace alert-c1" in err


def test_trace_of_an_unknown_id_says_where_correlation_ids_are(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["events", "trace", "missing", "--url", server])
    assert args.handler(args) == 1
    assert "corr= column of `whale events search`" in capsys.readouterr().err


def test_todos_list_says_how_many_there_are_and_how_to_get_the_next_page(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["todos", "list", "--url", server])
    assert args.handler(args) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 100
    assert "items 1-100 of 250; next page: --offset 100" in out.err


def test_todos_list_all_fetches_every_page(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["todos", "list", "--all", "--limit", "60", "--url", server])
    assert args.handler(args) == 0
    out = capsys.readouterr()
    assert [line.split()[0] for line in out.out.splitlines()] == [f"t{i:03}" for i in range(250)]
    assert "items 1-250 of 250" in out.err


def test_todos_list_passes_the_assignee_priority_and_overdue_filters(server: str) -> None:
    args = parse(["todos", "list", "--assignee", "ann", "--priority", "p1", "--overdue", "--url", server])
    assert args.handler(args) == 0
    query = parse_qs(urlsplit(Recorder.calls[-1]["path"]).query)
    assert (query["assignee"], query["priority"], query["overdue"]) == (["ann"], ["p1"], ["true"])


def test_todos_assign_patches_the_assignee_priority_and_due_time(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["todos", "assign", "t1", "ann", "--priority", "high", "--due", "2030-01-01T00:00:00Z"]
    args = parse([*argv, "--url", server])
    assert args.handler(args) == 0
    call = Recorder.calls[-1]
    assert (call["method"], call["path"]) == ("PATCH", "/todos/t1")
    assert call["body"] == {"assignee": "ann", "priority": "high", "due": "2030-01-01T00:00:00Z"}
    assert "t1: claimed assignee=ann" in capsys.readouterr().out
    args = parse(["todos", "assign", "t1", "--unassign", "--due", "none", "--url", server])
    assert args.handler(args) == 0
    assert Recorder.calls[-1]["body"] == {"assignee": None, "due": None}
    nothing = parse(["todos", "assign", "t1", "--url", server])
    with pytest.raises(ConfigError, match="give an assignee"):
        nothing.handler(nothing)


def test_todos_reopen_posts_to_the_items_reopen_route(server: str) -> None:
    args = parse(["todos", "reopen", "t1", "--comment", "back", "--by", "ann", "--url", server])
    assert args.handler(args) == 0
    assert Recorder.calls[-1]["path"] == "/todos/t1/reopen"
    assert Recorder.calls[-1]["body"] == {"by": "ann", "comment": "back"}
