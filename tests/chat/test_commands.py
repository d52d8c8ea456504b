"""Reading chat lines: verbs with ids, StackStorm-style aliases, and the chat file."""

from __future__ import annotations

import pytest
from whale_chat.aliases import Alias
from whale_chat.commands import Command, Unknown, parse
from whale_chat.config import ChatConfig

from whale.errors import ConfigError

ALIASES = [
    Alias("clean logs on {{host}}", "disk.clean", params={"path": "/var/log"}),
    Alias("restart {{service}} on {{host}} {{ mode = soft }}", "svc.restart", pool="infra"),
]


def test_verbs_take_an_id_and_an_optional_comment() -> None:
    assert parse("approve wf-1.gate looks fine", []) == Command("approve", "wf-1.gate", "looks fine")
    assert parse("DENY wf-1.gate", []) == Command("deny", "wf-1.gate")
    assert parse("claim t-9", []).verb == "claim"
    assert parse("", []).verb == "help"
    with pytest.raises(Unknown, match="needs an id"):
        parse("resolve", [])


def test_an_alias_captures_its_placeholders_over_its_fixed_params() -> None:
    assert parse("clean logs on web-1", ALIASES) == Command(
        "run", "disk.clean", params={"path": "/var/log", "host": "web-1"}
    )
    restart = parse("Restart nginx on 'web 2'", ALIASES)
    assert (restart.target, restart.pool, restart.params) == (
        "svc.restart", "infra", {"service": "nginx", "host": "web 2", "mode": "soft"}
    )  # fmt: skip
    assert parse("restart nginx on web-2 hard", ALIASES).params["mode"] == "hard"


def test_a_line_that_is_nothing_says_what_is() -> None:
    with pytest.raises(Unknown, match="approve <approval id>"):
        parse("clean everything", ALIASES)


def test_the_chat_file_maps_platform_users_and_checks_its_entries() -> None:
    config = ChatConfig.from_document(
        {
            "users": {"slack:U1": "ann", "wecom:zhangsan": "bob"},
            "aliases": [{"format": "clean logs on {{host}}", "action": "disk.clean"}],
        }
    )
    assert config.identity("slack", "U1") == "ann"
    assert config.identity("wecom", "U1") is None
    with pytest.raises(ConfigError) as caught:
        ChatConfig.from_document({"users": {"teams:U1": "ann"}})
    assert caught.value.field == "users.teams:U1"
    with pytest.raises(ConfigError) as caught:
        ChatConfig.from_document({"aliases": [{"format": "x {{a}} {{a}}", "action": "y"}]})
    assert caught.value.field == "aliases[0].format"
