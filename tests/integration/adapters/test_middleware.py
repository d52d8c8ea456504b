"""The sample CMDB's API calls appear on whale.ingest as redacted CloudEvents (real Kafka)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from whale import topics
from whale.settings import WhaleSettings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def load_example(relative: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_cmdb_calls_become_redacted_events_on_ingest(stack: WhaleSettings, taps: Any, unique: str) -> None:
    cmdb = load_example("examples/cmdb/app.py", "example_cmdb_app")
    source = f"/test/cmdb/{unique}"
    tap = taps(topics.INGEST)
    with TestClient(cmdb.create_app(stack, source=source)) as client:
        created = client.post(
            "/cis",
            json={
                "name": "db1",
                "owner": "ops",
                "attributes": {"root_password": "hunter2", "api_token": "t0k"},
            },
        )
        assert created.status_code == 201
        ci = created.json()["id"]
        assert (
            client.put(f"/cis/{ci}", json={"owner": "dba", "attributes": {"password": "x"}}).status_code
            == 200
        )
        assert client.get(f"/cis/{ci}").status_code == 200  # reads are not mapped
        assert client.put("/cis/nope", json={"owner": "x"}).status_code == 404  # failures publish nothing
        assert client.delete(f"/cis/{ci}").status_code == 204
    # leaving the client ran the lifespan shutdown: the middleware flushed its queue
    events = tap.wait(lambda e: e.source == source, 3, settle=1.0)
    events.sort(key=lambda e: ["cmdb.ci.created", "cmdb.ci.updated", "cmdb.ci.deleted"].index(e.type))
    assert [(e.type, e.subject) for e in events] == [
        ("cmdb.ci.created", ci),
        ("cmdb.ci.updated", ci),
        ("cmdb.ci.deleted", ci),
    ]
    created_data, updated_data = events[0].data, events[1].data
    assert created_data["attributes"] == {"root_password": "***", "api_token": "***"}
    assert updated_data["changes"]["attributes"] == {"password": "***"}
    assert updated_data["current"]["owner"] == "dba"
    assert "hunter2" not in str([e.data for e in events])


def test_a_plain_wsgi_app_publishes_redacted_events_after_2xx(
    stack: WhaleSettings, taps: Any, unique: str
) -> None:
    import io
    import json

    from whale_adapters.middleware import WhaleWSGIMiddleware
    from whale_adapters.middleware.mapping import parse_config

    def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        start_response("201 Created", [("Content-Type", "application/json")])
        return [json.dumps({"id": f"u-{unique}", "name": body["name"]}).encode()]

    source = f"/test/wsgi/{unique}"
    config = parse_config(
        {
            "source": source,
            "routes": [
                {
                    "method": "POST",
                    "path": "/users",
                    "type": "test.user.created",
                    "subject": "{{ response.id }}",
                }
            ],
        }
    )
    tap = taps(topics.INGEST)
    app = WhaleWSGIMiddleware(legacy, config=config, settings=stack)
    raw = json.dumps({"name": "ann", "password": "pw"}).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/users",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    result = app(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(result) == json.dumps({"id": f"u-{unique}", "name": "ann"}).encode()
    result.close()  # type: ignore[attr-defined]
    app.close()  # application shutdown flushes
    [event] = tap.wait(lambda e: e.source == source, 1, settle=1.0)
    assert (event.type, event.subject) == ("test.user.created", f"u-{unique}")
    assert event.data["request"] == {"name": "ann", "password": "***"}
