"""Helpers shared by the YAML-declared action kinds (field checks with file and field named)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whale.rules import templating
from whale_executor.errors import CatalogError

COMMON = frozenset({"kind", "name", "description", "params", "idempotent", "timeout"})


def check_keys(
    doc: Mapping[str, Any], allowed: set[str] | frozenset[str], *, source: str, where: str = ""
) -> None:
    unknown = sorted(set(doc) - set(allowed) - (COMMON if not where else set()))
    if unknown:
        raise CatalogError(
            f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(set(allowed) | (COMMON if not where else set())))})",
            source=source,
            field=f"{where}.{unknown[0]}" if where else unknown[0],
        )


def number(doc: Mapping[str, Any], key: str, default: float, *, source: str, minimum: float = 0.0) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise CatalogError(f"must be a number >= {minimum}", source=source, field=key)
    return float(value)


def integer(doc: Mapping[str, Any], key: str, default: int, *, source: str, field: str | None = None) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CatalogError("must be a non-negative integer", source=source, field=field or key)
    return value


def check_templates(value: Any, *, source: str, field: str) -> None:
    """Compile every string inside ``value`` so a broken template fails at load, not at run."""
    if isinstance(value, str):
        try:
            templating.check(value)
        except templating.TemplateError as exc:
            raise CatalogError(exc.message, source=source, field=field) from None
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_templates(v, source=source, field=f"{field}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_templates(v, source=source, field=f"{field}[{i}]")


def mapping(doc: Mapping[str, Any], key: str, *, source: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, Mapping):
        raise CatalogError("must be a mapping", source=source, field=key)
    return dict(value)
