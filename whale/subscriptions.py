"""The push subscription: model, YAML loading and its record on the compacted ``whale.subscriptions``.

Shared so that every writer validates the same way: the dispatcher (``whale run dispatcher``), the
``whale subscriptions`` CLI and the event center's subscriptions API.

YAML (``whale subscriptions apply subs.yaml``)::

    subscriptions:
      - id: ops-pager                       # record key on whale.subscriptions
        endpoint: https://pager.example.com/hooks/whale
        filter:                             # the rules' matching language (whale.rules.matching); omit = all
          all:
            - {field: type, prefix: prometheus.alert.}
            - {field: data.labels.severity, equals: critical}
        topics: [whale.events]              # default
        start: latest                       # where a new subscription starts: latest | earliest
        max_attempts: 8                     # then dead-letter to whale.dlq
        max_age: 3600                       # seconds since the first attempt, then dead-letter
        backoff_initial: 0.5                # seconds, doubled per attempt (with jitter) ...
        backoff_max: 60                     # ... up to this
        timeout: 10                         # per HTTP attempt
        headers: {X-Team: ops}              # static headers
        secret_env: PAGER_HMAC_SECRET       # optional: X-Whale-Signature: sha256=<hmac of body>
        paused: false                       # pause / resume
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from whale import topics as topic_names
from whale.cloudevent import CloudEvent
from whale.errors import ConfigError
from whale.rules.matching import Condition, compile_match
from whale.rules.operators import MatchError

RECORD_TYPE = "whale.subscription.saved"
RECORD_SOURCE = "/whale/subscriptions"


class SubscriptionError(ConfigError, code="invalid_subscription"):
    """A subscription definition is malformed; ``field`` names where (``subscriptions.0.endpoint``)."""

    def __init__(self, message: str, *, field: str, source: str | None = None) -> None:
        super().__init__(message, field=field, source=source)
        self.source = source


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")
    endpoint: str
    filter: dict[str, Any] | None = None
    topics: list[str] = Field(default_factory=lambda: [topic_names.EVENTS], min_length=1)
    start: Literal["latest", "earliest"] = "latest"
    max_attempts: int = Field(default=8, ge=1, le=1000)
    max_age: float = Field(default=3600.0, gt=0)
    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    secret_env: str | None = None
    paused: bool = False
    description: str = ""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _filter(self) -> Subscription:
        if self.filter is not None:
            try:
                compile_match(self.filter)
            except MatchError as exc:
                where = f"filter.{exc.field}" if getattr(exc, "field", "") else "filter"
                raise ValueError(f"{where}: {exc.message}") from None
        return self

    def condition(self) -> Condition | None:
        return None if self.filter is None else compile_match(self.filter)

    def to_record(self) -> CloudEvent:
        """The whole current state, as the compacted record (key = id)."""
        return CloudEvent.create(
            type=RECORD_TYPE, source=RECORD_SOURCE, subject=self.id, data=self.model_dump(mode="json")
        )


def from_record(record: CloudEvent) -> Subscription:
    return Subscription.model_validate(record.data)


def parse_subscriptions(doc: Any, *, origin: str = "<subscriptions>") -> list[Subscription]:
    """Validate a ``{"subscriptions": [...]}`` document; :class:`SubscriptionError` names the field."""
    if not isinstance(doc, dict) or not isinstance(doc.get("subscriptions"), list):
        raise SubscriptionError(
            f"{origin}: expected a mapping with a 'subscriptions' list", field="subscriptions"
        )
    out: list[Subscription] = []
    for i, item in enumerate(doc["subscriptions"]):
        try:
            out.append(Subscription.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            field = f"subscriptions.{i}" + (f".{loc}" if loc else "")
            message = str(err["msg"]).removeprefix("Value error, ")
            raise SubscriptionError(f"{origin}: {field}: {message}", field=field, source=origin) from None
    ids = [s.id for s in out]
    for sid in ids:
        if ids.count(sid) > 1:
            raise SubscriptionError(
                f"{origin}: duplicate subscription id {sid!r}", field="subscriptions", source=origin
            )
    return out


def load_subscriptions(path: Path) -> list[Subscription]:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SubscriptionError(f"{path}: cannot read: {exc}", field="<file>", source=str(path)) from None
    return parse_subscriptions(doc, origin=str(path))
