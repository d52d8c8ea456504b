"""Redaction at ingest: secret-looking keys of event data are replaced and listed in an extension."""

from __future__ import annotations

from whale.cloudevent import CloudEvent
from whale.redaction import REDACTED, Redactor
from whale.settings import WhaleSettings


def _event(data: object, type_: str = "t") -> CloudEvent:
    return CloudEvent.create(type=type_, source="/s", data=data)


def test_common_secret_keys_are_redacted_on_by_default() -> None:
    data = {
        "user": "bob",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer x", "X-Api-Key": "k"},
        "items": [{"githubToken": "t"}, {"token_count": 3}],
        "db": {"client_secret": "s", "secret": None},
    }
    out = Redactor.from_settings(WhaleSettings()).apply(_event(data))
    assert out.data["password"] == REDACTED and out.data["user"] == "bob"
    assert out.data["headers"] == {"Authorization": REDACTED, "X-Api-Key": REDACTED}
    assert out.data["items"] == [{"githubToken": REDACTED}, {"token_count": 3}]
    assert out.data["db"] == {"client_secret": REDACTED, "secret": None}
    assert (
        out.extensions["redacted"]
        == "/db/client_secret,/headers/Authorization,/headers/X-Api-Key,/items/0/githubToken,/password"
    )


def test_nothing_to_redact_leaves_the_event_unchanged() -> None:
    event = _event({"host": "db1"})
    assert Redactor().apply(event) is event


def test_per_type_keys_replace_the_default_and_an_empty_list_turns_it_off() -> None:
    redactor = Redactor(["password"], {"vault.read": ["pin"], "audit.raw": []})
    assert redactor.apply(_event({"pin": 1, "password": "p"}, "vault.read")).data == {
        "pin": REDACTED,
        "password": "p",
    }
    assert redactor.apply(_event({"password": "p"}, "audit.raw")).data == {"password": "p"}


def test_deep_data_is_redacted_without_recursion() -> None:
    data: object = {"password": "p"}
    for _ in range(120):
        data = {"a": data}
    out = Redactor().apply(_event(data))
    assert str(out.extensions["redacted"]).endswith("/password")
