"""The middleware mapping: route matching, templates, redaction, precise config errors."""

from __future__ import annotations

import json

import pytest
from whale_adapters.errors import MappingError, PayloadError
from whale_adapters.middleware.mapping import REDACTED, Capture, Router, parse_config

CONFIG = {
    "source": "/test/cmdb",
    "routes": [
        {"method": "post", "path": "/cis", "type": "cmdb.ci.created", "subject": "{{ response.id }}"},
        {
            "method": "PUT",
            "path": "/cis/{ci_id}",
            "type": "cmdb.ci.updated",
            "subject": "{{ path.ci_id }}",
            "data": {"id": "{{ path.ci_id }}", "changes": "{{ request }}", "n": "{{ query.n | int }}"},
        },
        {"method": "GET", "path": "/files/{rest:path}", "type": "file.read", "subject": "{{ path.rest }}"},
    ],
}


def test_routes_match_method_and_pattern_and_capture_path_params() -> None:
    router = Router(parse_config(CONFIG))
    assert router.match("POST", "/cis") == (0, {})
    assert router.match("POST", "/cis/") == (0, {})
    assert router.match("PUT", "/cis/ci-7") == (1, {"ci_id": "ci-7"})
    assert router.match("PUT", "/cis/ci-7/extra") is None
    assert router.match("GET", "/cis") is None
    assert router.match("GET", "/files/a/b.txt") == (2, {"rest": "a/b.txt"})


def test_default_data_holds_path_request_and_response_with_secrets_redacted() -> None:
    router = Router(parse_config(CONFIG))
    request = {"name": "db1", "credentials": {"password": "hunter2", "user": "root"}, "api_token": "t"}
    response = {"id": "ci-1", "name": "db1", "Password": "hunter2"}
    event = router.build_event(
        Capture(0, {}, "", json.dumps(request).encode(), json.dumps(response).encode(), 201)
    )
    assert event.type == "cmdb.ci.created"
    assert event.source == "/test/cmdb"
    assert event.subject == "ci-1"
    assert event.data["request"]["credentials"] == {"password": REDACTED, "user": "root"}
    assert event.data["request"]["api_token"] == REDACTED
    assert event.data["response"]["Password"] == REDACTED
    assert "hunter2" not in json.dumps(event.data)


def test_data_template_renders_native_types_from_path_request_and_query() -> None:
    router = Router(parse_config(CONFIG))
    event = router.build_event(
        Capture(1, {"ci_id": "ci-9"}, "n=3", b'{"owner": "ops", "token": "x"}', b"{}", 200)
    )
    assert event.subject == "ci-9"
    assert event.data == {"id": "ci-9", "changes": {"owner": "ops", "token": REDACTED}, "n": 3}


def test_a_template_reading_a_missing_field_is_a_payload_error_naming_the_route() -> None:
    router = Router(parse_config(CONFIG))
    with pytest.raises(PayloadError, match=r"POST /cis: subject"):
        router.build_event(Capture(0, {}, "", b"{}", b'{"name": "no id"}', 201))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"routes": []}, "routes"),
        ({"routes": [{"method": "FETCH", "path": "/x", "type": "t"}]}, "routes.0.method"),
        ({"routes": [{"method": "GET", "path": "x", "type": "t"}]}, "routes.0.path"),
        ({"routes": [{"method": "GET", "path": "/x", "type": "t", "subject": "{{ a"}]}, "routes.0.subject"),
        ({"when_full": "explode"}, "when_full"),
        ({"source": "has space"}, "source"),
    ],
)
def test_bad_config_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_config({**CONFIG, **change})
    assert info.value.field == field
