"""`whale tokens new` prints a token and an entry whose hash authenticates it."""

from __future__ import annotations

import argparse

import pytest
import yaml
from whale_event_center.auth import TokenStore
from whale_event_center.cli import register


def test_new_token_entry_authenticates_the_printed_token(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["tokens", "new", "--name", "nagios", "--source", "urn:nagios*"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    entries = yaml.safe_load("\n".join(out[2:]))
    sender = TokenStore.from_document({"tokens": entries}, env={}).authenticate(f"Bearer {token}", None, b"")
    assert sender.name == "nagios" and sender.may_publish("urn:nagios/host1")
    assert token not in "\n".join(out[1:])
