"""The example configurations in examples/adapters/ are valid (they are what the READMEs show)."""

from __future__ import annotations

from pathlib import Path

import pytest
from whale_adapters.config import load_adapters
from whale_adapters.webhook import Webhook

from whale.subscriptions import load_subscriptions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "adapters"


def test_the_example_adapters_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", "example")
    config = load_adapters(EXAMPLES / "adapters.yaml")
    assert [w.name for w in config.webhooks] == ["shop"]
    assert [p.name for p in config.pollers] == ["cmdb"]
    assert Webhook(config.webhooks[0]).name == "shop"
    assert config.pollers[0].type_prefix == "cmdb.ci"


def test_the_example_subscriptions_load() -> None:
    subs = load_subscriptions(EXAMPLES / "subscriptions.yaml")
    assert [(s.id, s.paused) for s in subs] == [("ops-pager", False), ("cmdb-audit-log", True)]
    condition = subs[0].condition()
    assert condition is not None
    assert condition.evaluate(
        {"type": "prometheus.alert.firing", "data": {"labels": {"severity": "critical"}}}
    )
