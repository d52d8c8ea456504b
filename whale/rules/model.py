"""Rules: the model and its validation against the catalogue and schema registry.

Shared by the rule engine (which loads a rules directory and follows ``whale.rules``) and the event
center's ``/rules`` API (which validates before it writes). A rule is validated as a whole: either
every part is right and a :class:`Rule` comes back, or :class:`RuleError` lists every problem with
the field it concerns. Nothing is ever half-loaded. Loading rule files: :mod:`whale.rules.files`;
checking what a rule refers to (its target, its event type's fields): :mod:`whale.rules.references`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from whale.cloudevent import CloudEvent
from whale.errors import ConfigError
from whale.rules import templating
from whale.rules.matching import Condition, compile_match
from whale.rules.operators import MatchError
from whale.rules.paths import parse_path
from whale.rules.references import check_fields, check_target, template_strings
from whale.topics import POOL_NAME

RULE_SAVED = "whale.rule.saved"
RULE_SOURCE = "whale/rules"
RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
LIFECYCLE = ("firing", "updated", "resolved")


class RuleError(ConfigError, code="invalid_rule"):
    """A rule is invalid; ``problems`` lists ``{"field", "message"}``; ``rule_id`` when known."""

    def __init__(self, problems: list[dict[str, str]], *, rule_id: str | None = None) -> None:
        text = "; ".join(f"{p['field'] or '(rule)'}: {p['message']}" for p in problems)
        prefix = f"invalid rule {rule_id!r}" if rule_id else "invalid rule"
        field = problems[0]["field"] if problems else ""
        super().__init__(f"{prefix}: {text}", problems, field=field, rule_id=rule_id)
        self.rule_id = rule_id
        self.field = problems[0]["field"] if problems else ""


class Lookup(Protocol):
    """What validation needs of a compacted view (``CompactedView`` or a dict of events)."""

    def get(self, key: str, /) -> CloudEvent | None: ...


def parse_duration(value: Any) -> float:
    """``90``, ``"30s"``, ``"10m"``, ``"1.5h"``, ``"1d"``, ``"250ms"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (found := _DURATION.match(value)):
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 1h, 1d or seconds)")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def _one_or_more(value: Any, usage: str, check: Callable[[Any], str | None]) -> list[Any] | None:
    """A value or a non-empty list of values, each passing ``check`` (which says what is wrong)."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ValueError(usage)
    for item in values:
        problem = check(item)
        if problem is not None:
            raise ValueError(problem)
    return values


class Target(BaseModel):
    """An action or workflow of an executor pool's catalogue."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["action", "workflow"]
    name: str = Field(min_length=1, max_length=200)
    pool: str = "default"

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: str) -> str:
        if not POOL_NAME.match(v):
            raise ValueError("pool must be 1-40 lower-case letters, digits or dashes")
        return v


class Throttle(BaseModel):
    """A token bucket per rendered ``key``: ``capacity`` tokens, refilled at ``refill_per_second``.
    ``once_within: 10m`` is shorthand for capacity 1 refilled once every 10 minutes."""

    model_config = ConfigDict(extra="forbid")

    key: str = ""
    capacity: int | None = Field(default=None, ge=1, le=1_000_000)
    refill_per_second: float | None = Field(default=None, gt=0)
    once_within: str | float | None = None

    def bucket(self) -> tuple[int, float]:
        """``(capacity, refill tokens per second)`` after applying the shorthand."""
        if self.once_within is not None:
            return 1, 1.0 / parse_duration(self.once_within)
        return self.capacity or 1, self.refill_per_second or 1.0


class Rule(BaseModel):
    """A rule document (the data of a ``whale.rule.saved`` record)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    version: int = Field(default=1, ge=1)
    enabled: bool = True
    description: str = ""
    match: dict[str, Any]
    target: Target
    params: dict[str, Any] = Field(default_factory=dict)
    throttle: Throttle | None = None
    on: list[str] | None = Field(
        default=None,
        description="alert lifecycle steps the rule acts on (firing, updated, resolved): a condition on "
        "the alertstate extension, added to match",
    )
    changed: list[str] | None = Field(
        default=None,
        description="act only when one of these values changed since the alert's previous event "
        "(dotted names as in an update's data.changed, e.g. annotations.description)",
    )

    _condition: Condition | None = PrivateAttr(default=None)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not RULE_ID.match(v):
            raise ValueError(
                "id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return v

    @field_validator("on", mode="before")
    @classmethod
    def _on(cls, v: Any) -> Any:
        def check(value: Any) -> str | None:
            if value in LIFECYCLE:
                return None
            return f"on must be firing, updated or resolved (the alert lifecycle), got {value!r}"

        return _one_or_more(v, "on must be firing, updated or resolved, or a non-empty list of them", check)

    @field_validator("changed", mode="before")
    @classmethod
    def _changed(cls, v: Any) -> Any:
        def check(value: Any) -> str | None:
            try:
                parse_path(value)
            except (TypeError, ValueError):
                return f"changed: {value!r} is not a dotted value name"
            return None

        usage = "changed must be a value name (e.g. annotations.description) or a list of them"
        return _one_or_more(v, usage, check)

    def effective_match(self) -> dict[str, Any]:
        """``match`` with the conditions ``on`` and ``changed`` stand for."""
        parts: list[Any] = [self.match]
        if self.on is not None:
            parts.append({"field": "alertstate", "in": list(self.on)})
        if self.changed is not None:
            parts.append({"any": [{"field": "data.changed", "contains": name} for name in self.changed]})
        return self.match if len(parts) == 1 else {"all": parts}

    @property
    def condition(self) -> Condition:
        if self._condition is None:
            self._condition = compile_match(self.effective_match())
        return self._condition

    @property
    def warnings(self) -> list[str]:
        return self._warnings

    def document(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json")
        for optional in ("on", "changed"):
            if doc[optional] is None:
                del doc[optional]
        return doc

    def to_event(self) -> CloudEvent:
        """The compacted record for ``whale.rules`` (key = rule id)."""
        return CloudEvent.create(type=RULE_SAVED, source=RULE_SOURCE, subject=self.id, data=self.document())


# ---------------------------------------------------------------------- validation
def validate_rule(doc: Any, catalog: Lookup | None = None, schemas: Lookup | None = None) -> Rule:
    """Validate a rule document completely; raises :class:`RuleError` listing every problem."""
    rule_id = doc.get("id") if isinstance(doc, Mapping) and isinstance(doc.get("id"), str) else None
    if not isinstance(doc, Mapping):
        raise RuleError([{"field": "", "message": f"a rule must be a mapping, got {type(doc).__name__}"}])
    doc = {("on" if key is True else key): value for key, value in doc.items()}  # YAML 1.1: on = true
    try:
        rule = Rule.model_validate(doc)
    except ValidationError as exc:
        raise RuleError([_pydantic_problem(e) for e in exc.errors()], rule_id=rule_id) from None
    problems: list[dict[str, str]] = []
    plain: Condition | None = None
    try:
        plain = compile_match(rule.match)  # problems are reported where they are in match
        rule._condition = compile_match(rule.effective_match())
    except MatchError as exc:
        where = f"match.{exc.field}" if exc.field else "match"
        problems.append({"field": where, "message": exc.message})
    for path, source in template_strings(rule.params, "params"):
        _check_template(source, path, problems)
    if rule.throttle is not None:
        _check_throttle(rule.throttle, problems)
    check_target(rule, catalog, problems)
    if plain is not None and rule._condition is not None and schemas is not None:
        check_fields(rule, plain, schemas, problems)
    if problems:
        raise RuleError(problems, rule_id=rule.id)
    return rule


def _pydantic_problem(err: Any) -> dict[str, str]:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "required field is missing"
    elif err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return {"field": loc, "message": msg}


def _check_template(source: str, path: str, problems: list[dict[str, str]]) -> None:
    try:
        templating.check(source)
    except templating.TemplateError as exc:
        problems.append({"field": path, "message": exc.message})


def _check_throttle(throttle: Throttle, problems: list[dict[str, str]]) -> None:
    _check_template(throttle.key, "throttle.key", problems)
    if throttle.once_within is not None:
        if throttle.capacity is not None or throttle.refill_per_second is not None:
            problems.append(
                {
                    "field": "throttle.once_within",
                    "message": "once_within replaces capacity/refill_per_second",
                }
            )
        try:
            parse_duration(throttle.once_within)
        except ValueError as exc:
            problems.append({"field": "throttle.once_within", "message": str(exc)})
    elif throttle.capacity is None or throttle.refill_per_second is None:
        problems.append(
            {"field": "throttle", "message": "give once_within, or both capacity and refill_per_second"}
        )
