"""The action interface: every kind (python, http, shell, ssh, notify) is an :class:`Action`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from whale_executor.errors import CatalogError, ParamsInvalid

Kind = Literal["python", "http", "shell", "ssh", "notify", "ansible"]
KINDS: tuple[str, ...] = ("python", "http", "shell", "ssh", "notify", "ansible")


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a run knows about why it runs (never secrets)."""

    request_id: str
    idempotency_key: str
    pool: str
    attempt: int = 1
    run_id: str | None = None
    task: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Action(Protocol):
    """One catalogue entry. ``validate`` turns raw params into what ``run`` takes or raises
    :class:`ParamsInvalid`; ``run`` returns a JSON-serialisable output or raises a ``RunError``."""

    name: str
    kind: str
    description: str
    idempotent: bool
    timeout: float

    @property
    def params_schema(self) -> dict[str, Any]: ...

    def validate(self, params: Any) -> Any: ...

    async def run(self, params: Any, ctx: ActionContext) -> Any: ...


def describe(action: Action) -> dict[str, Any]:
    """The catalogue entry published on ``whale.catalog``."""
    return {
        "name": action.name,
        "kind": action.kind,
        "description": action.description,
        "params_schema": action.params_schema,
        "idempotent": action.idempotent,
    }


class SchemaParams:
    """Params validation against a JSON Schema (draft 2020-12), every problem named by field."""

    def __init__(self, schema: Mapping[str, Any] | None, *, source: str = "") -> None:
        self.schema: dict[str, Any] = dict(schema) if schema else {"type": "object"}
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise CatalogError(
                f"not a valid JSON Schema: {exc.message}", source=source, field="params"
            ) from None
        self._validator = Draft202012Validator(self.schema)

    def validate(self, params: Any) -> dict[str, Any]:
        if params is None:
            params = {}
        problems = [
            {"field": ".".join(str(p) for p in err.absolute_path) or "params", "message": err.message}
            for err in sorted(self._validator.iter_errors(params), key=lambda e: list(e.absolute_path))
        ]
        if problems:
            text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise ParamsInvalid(f"invalid params: {text}", problems)
        if not isinstance(params, dict):
            raise ParamsInvalid("params must be an object", [{"field": "params", "message": "not an object"}])
        return _with_defaults(self.schema, params)


def _with_defaults(schema: Mapping[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Top-level ``default`` values of the schema's properties, filled in."""
    out = dict(params)
    for name, prop in (schema.get("properties") or {}).items():
        if name not in out and isinstance(prop, Mapping) and "default" in prop:
            out[name] = prop["default"]
    return out


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True
