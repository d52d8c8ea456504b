"""Secret scrubbing: every representation of a resolved secret is hidden before anything is published."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from whale_executor import secrets
from whale_executor.results import SUCCEEDED, result_event

from whale.cloudevent import CloudEvent

SECRET = 'pa"ss/wörd+&x y'


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
    ],
)
def test_every_representation_of_a_secret_is_scrubbed(form: str) -> None:
    assert secrets.scrub(f"before {form} after", [SECRET]) == "before *** after"


def test_a_json_body_echoing_a_secret_with_a_quote_is_scrubbed() -> None:
    body = json.dumps({"echo": SECRET})
    assert SECRET not in json.loads(secrets.scrub(body, [SECRET]))["echo"]
    assert json.loads(secrets.scrub(body, [SECRET])) == {"echo": "***"}


def test_a_webhook_key_echoed_alone_is_scrubbed() -> None:
    url = "https://hooks.example/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    assert secrets.scrub('{"errmsg": "invalid key 693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"}', [url]) == (
        '{"errmsg": "invalid key ***"}'
    )
    slack = "https://hooks.slack.example/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in secrets.scrub(
        "token XXXXXXXXXXXXXXXXXXXXXXXX is revoked", [slack]
    )
    basic = "https://bob:hunter22@api.example/x"
    assert secrets.scrub("bad password hunter22", [basic]) == "bad password ***"


def test_resolved_secrets_are_scrubbed_from_published_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHALE_TEST_SCRUB", 's3cr"t-value')
    secrets.resolve("env:WHALE_TEST_SCRUB")
    request = CloudEvent.create(type="whale.action.requested", source="/r", data={})
    output = {"body": {"echo": 's3cr\\"t-value', "raw": 's3cr"t-value'}, 's3cr"t-value': 1}
    event = result_event(
        request, type=SUCCEEDED, pool="default", request_id="r", idempotency_key="k", target={}, output=output
    )
    assert "s3cr" not in json.dumps(event.to_structured())


def test_short_values_are_not_treated_as_secrets() -> None:
    assert secrets.scrub("a b c", ["a"]) == "a b c"


def test_log_lines_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from whale.logging import configure_logging
    from whale.settings import WhaleSettings

    secrets.remember("log-secret-value")
    configure_logging(WhaleSettings(log_format="json"), service="test", scrub=secrets.scrub)
    structlog.get_logger("t").warning("action_failed", error='bad answer {"k": "log-secret-value"}')
    err = capsys.readouterr().err
    assert "action_failed" in err and "log-secret-value" not in err
    structlog.reset_defaults()
