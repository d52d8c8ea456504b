"""What the rule-language tests share: one event context with every kind of value."""

from __future__ import annotations

from typing import Any

CTX: dict[str, Any] = {
    "type": "alert.fired",
    "source": "prometheus/eu-1",
    "time": "2026-11-23T10:00:00Z",
    "severity": "critical",
    "data": {
        "value": 91.5,
        "count": 3,
        "flag": True,
        "name": "disk-full on web-1",
        "tags": ["prod", "disk", 7],
        "labels": {"instance": "web-1:9100", "app.kubernetes.io/name": "web"},
        "alerts": [{"labels": {"instance": "web-1"}}, {"labels": {"instance": "web-2"}}],
        "started": "2026-11-23T09:59:00+01:00",
        "none": None,
    },
}
