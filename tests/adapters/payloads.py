"""Alertmanager webhook payloads (version 4) shared by unit and integration tests."""

from __future__ import annotations

from typing import Any


def alert(
    fingerprint: str, status: str = "firing", *, instance: str = "db1:9100", **extra: Any
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighCPU", "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"CPU high on {instance}"},
        "startsAt": "2026-11-23T10:00:00.123456789Z",
        "endsAt": "2026-11-23T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu",
        "fingerprint": fingerprint,
        **extra,
    }


def notification(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighCPU"}',
        "truncatedAlerts": 0,
        "status": status or alerts[0]["status"],
        "receiver": "whale",
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
