"""Tokens file loading and validation (hashes only, grants, HMAC secrets from the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest
from whale_event_center.auth import Sender, TokenStore, hash_token, new_token
from whale_event_center.errors import Forbidden

from whale.errors import ConfigError


def test_tokens_file_stores_only_hashes_and_authenticates(tmp_path: Path) -> None:
    token = new_token()
    path = tmp_path / "tokens.yaml"
    path.write_text(f"tokens:\n  - name: a\n    sha256: {hash_token(token)}\n    sources: ['urn:a']\n")
    store = TokenStore.load(path)
    assert token not in path.read_text()
    assert store.authenticate(f"Bearer {token}", None, b"").name == "a"


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"sha256": "0" * 64, "sources": ["x"]}, "tokens[0].name"),
        ({"name": "a", "sha256": "plain-token", "sources": ["x"]}, "tokens[0].sha256"),
        ({"name": "a", "sha256": "0" * 64, "sources": []}, "tokens[0].sources"),
        (
            {"name": "a", "sha256": "0" * 64, "sources": ["x"], "hmac_secret_env": "UNSET_VAR"},
            "tokens[0].hmac_secret_env",
        ),
    ],
)
def test_malformed_entries_name_the_field(entry: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        TokenStore.from_document({"tokens": [entry]}, env={})
    assert info.value.fields["field"] == field


def test_grants_are_exact_unless_they_end_with_a_star() -> None:
    sender = Sender("s", ("urn:exact", "https://svc/*"))
    assert sender.may_publish("urn:exact") and not sender.may_publish("urn:exact2")
    assert sender.may_publish("https://svc/a/b") and not sender.may_publish("https://other")
    with pytest.raises(Forbidden):
        sender.check_source("urn:other")
