from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from whale import tokens
from whale.audit import audit_event, redact
from whale.authz import (
    DEV_IDENTITY,
    Authenticator,
    NotAuthenticated,
    NotPermitted,
    Role,
    split_token,
    topic_role,
)


class Book:
    def __init__(self) -> None:
        self.stored: dict[str, Mapping[str, Any]] = {}

    def record(self, token_id: str) -> Mapping[str, Any] | None:
        return self.stored.get(token_id)

    def records(self) -> list[Mapping[str, Any]]:
        return list(self.stored.values())

    def issue(self, role: Role, name: str = "ann", **kwargs: Any) -> str:
        token_id, token = tokens.new_personal_token()
        self.stored[token_id] = tokens.new_record(token, token_id, name=name, role=role, **kwargs)
        return token


def run(auth: Authenticator, header: str | None) -> Any:
    return asyncio.run(auth.authenticate(header))


def test_roles_are_ordered_and_parsed() -> None:
    assert Role.viewer < Role.operator < Role.author < Role.admin
    assert Role.parse(" Admin ") is Role.admin
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("root")


def test_a_personal_token_gives_its_identity_and_only_its_hash_is_stored() -> None:
    book = Book()
    token = book.issue(Role.operator, team="db")
    identity = run(Authenticator(tokens=book), f"Bearer {token}")
    assert (identity.name, identity.role, identity.team, identity.kind) == (
        "ann",
        Role.operator,
        "db",
        "person",
    )
    assert all(token not in str(r) for r in book.stored.values())


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing credentials"),
        ("Basic abc", "malformed"),
        ("Bearer wht_nope.x", "unknown token"),
        ("Bearer something-else", "unknown credentials"),
    ],
)
def test_bad_credentials_are_401_with_the_reason(header: str | None, reason: str) -> None:
    with pytest.raises(NotAuthenticated, match=reason):
        run(Authenticator(tokens=Book()), header)


def test_expired_revoked_and_altered_tokens_are_refused() -> None:
    book = Book()
    expired = book.issue(Role.admin, ttl=timedelta(seconds=-1))
    with pytest.raises(NotAuthenticated, match="expired"):
        run(Authenticator(tokens=book), f"Bearer {expired}")
    good = book.issue(Role.admin)
    token_id = split_token(good)
    assert token_id is not None
    with pytest.raises(NotAuthenticated, match="unknown token"):
        run(Authenticator(tokens=book), f"Bearer {good}x")
    book.stored[token_id[0]] = tokens.revoked(book.stored[token_id[0]], "boss")
    with pytest.raises(NotAuthenticated, match="revoked"):
        run(Authenticator(tokens=book), f"Bearer {good}")


def test_dev_mode_makes_every_caller_the_dev_admin() -> None:
    assert run(Authenticator(dev_mode=True), None) is DEV_IDENTITY


def test_internal_topics_are_admin_only() -> None:
    assert topic_role("whale.events") is Role.viewer
    assert topic_role("whale.actions.db-team") is Role.viewer
    assert topic_role("whale.executor.state") is Role.admin
    assert topic_role("whale.tokens") is Role.admin


def test_audit_events_redact_secrets_and_name_the_actor() -> None:
    assert redact({"headers": {"Authorization": "Bearer x"}, "secret_env": "S", "n": [{"token": "t"}]}) == {
        "headers": {"Authorization": "***"},
        "secret_env": "***",
        "n": [{"token": "***"}],
    }
    event = audit_event(DEV_IDENTITY, "rule", "saved", "r1", None, {"id": "r1"})
    assert event.type == "whale.audit.rule.saved" and event.subject == "rule/r1"
    assert event.data["actor"]["name"] == "dev-mode" and event.data["after"] == {"id": "r1"}
    with pytest.raises(ValueError, match="not an audit type"):
        audit_event(DEV_IDENTITY, "rule", "exploded", "r1")


def test_dev_mode_is_only_read_from_the_whale_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from whale.authz import AuthSettings

    monkeypatch.setenv("DEV_MODE", "true")
    assert AuthSettings().dev_mode is False
    monkeypatch.setenv("WHALE_DEV_MODE", "true")
    assert AuthSettings().dev_mode is True


def test_a_relay_with_the_delegate_grant_acts_with_the_persons_own_role_and_is_recorded() -> None:
    book = Book()
    book.issue(Role.viewer, name="vic")
    book.issue(Role.operator, name="ann")
    relay = book.issue(Role.operator, name="chat", kind="service", grants=("delegate",))
    auth = Authenticator(tokens=book)
    ann = asyncio.run(auth.authenticate(f"Bearer {relay}", "ann"))
    assert (ann.name, ann.role, ann.delegate) == ("ann", Role.operator, "chat")
    assert ann.actor()["delegate"] == "chat"
    vic = asyncio.run(auth.authenticate(f"Bearer {relay}", "vic"))
    assert vic.role is Role.viewer


def test_acting_for_someone_needs_the_grant_and_a_known_person_and_never_exceeds_the_relay() -> None:
    book = Book()
    book.issue(Role.admin, name="boss")
    plain = book.issue(Role.admin, name="svc", kind="service")
    relay = book.issue(Role.operator, name="chat", kind="service", grants=("delegate",))
    auth = Authenticator(tokens=book)
    with pytest.raises(NotPermitted, match="no 'delegate' grant"):
        asyncio.run(auth.authenticate(f"Bearer {plain}", "boss"))
    with pytest.raises(NotPermitted, match="no active personal token"):
        asyncio.run(auth.authenticate(f"Bearer {relay}", "nobody"))
    assert asyncio.run(auth.authenticate(f"Bearer {relay}", "boss")).role is Role.operator
