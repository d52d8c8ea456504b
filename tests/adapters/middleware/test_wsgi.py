"""WSGI middleware: the app still reads its body, events only after 2xx, published on close."""

from __future__ import annotations

import io
import json
from typing import Any, cast

from whale_adapters.middleware import BackgroundPublisher, WhaleWSGIMiddleware
from whale_adapters.middleware.mapping import Router, parse_config

from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.testing import FakeProducer


def legacy_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
    if body.get("fail"):
        start_response("409 Conflict", [("Content-Type", "application/json")])
        return [b'{"error": "conflict"}']
    start_response("201 Created", [("Content-Type", "application/json")])
    return [json.dumps({"id": "u-1", "name": body["name"]}).encode()]


def _call(app: Any, method: str, path: str, body: dict[str, Any]) -> tuple[str, bytes]:
    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    seen: list[str] = []
    result = app(environ, lambda status, headers, exc_info=None: seen.append(status))
    out = b"".join(result)
    result.close()
    return seen[0], out


def test_wsgi_calls_become_redacted_events_after_2xx_and_are_flushed_on_close() -> None:
    producer = FakeProducer()
    config = parse_config(
        {
            "source": "/test/users",
            "validate_schemas": False,
            "routes": [
                {"method": "POST", "path": "/users", "type": "user.created", "subject": "{{ response.id }}"}
            ],
        }
    )
    publisher = BackgroundPublisher(
        WhaleSettings(), Router(config), producer_factory=lambda: cast(EventProducer, producer)
    )
    app = WhaleWSGIMiddleware(legacy_app, publisher=publisher)
    assert _call(app, "POST", "/users", {"name": "ann", "password": "pw"}) == (
        "201 Created",
        b'{"id": "u-1", "name": "ann"}',
    )
    assert _call(app, "POST", "/users", {"name": "bob", "fail": True})[0] == "409 Conflict"
    app.close()
    assert producer.closed
    assert len(producer.sent) == 1
    event = producer.sent[0][1]
    assert (event.type, event.subject) == ("user.created", "u-1")
    assert event.data["request"] == {"name": "ann", "password": "***"}
