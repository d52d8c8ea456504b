"""The middleware's mapping: which method + route become which event type, and how subject and data
are built from path parameters, the request JSON and the response JSON, with secrets redacted.

YAML::

    source: /cmdb                      # CloudEvents source of every event
    redact: [password, token]          # key names (case-insensitive substrings) replaced by "***"
    queue_size: 10000                  # bounded background queue
    when_full: drop                    # or: block (up to block_timeout seconds)
    routes:
      - method: POST
        path: /cis                     # {name} captures a path segment
        type: cmdb.ci.created
        subject: "{{ response.id }}"   # sandboxed template over path, query, request, response
        data: "{{ response }}"         # optional; default {"path", "request", "response"}

Only the route matching runs on the request path; templates render in the background worker.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from whale import topics
from whale.cloudevent import CloudEvent
from whale.rules.templating import TemplateError, check, render_value
from whale_adapters.errors import MappingError, PayloadError

REDACTED = "***"
DEFAULT_REDACT = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization")
_SIMPLE = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}\s*$")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::path)?\}")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class RouteMapping(BaseModel):
    """One method + route pattern and the event it becomes."""

    model_config = ConfigDict(extra="forbid")

    method: str
    path: str
    type: str
    subject: str | None = None
    data: Any = None

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v.upper() not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {v!r}")
        return v.upper()

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"path must start with '/', got {v!r}")
        return v

    def pattern(self) -> re.Pattern[str]:
        out, pos = "^", 0
        for m in _PARAM.finditer(self.path):
            out += re.escape(self.path[pos : m.start()])
            out += f"(?P<{m.group(1)}>.+)" if m.group(0).endswith(":path}") else f"(?P<{m.group(1)}>[^/]+)"
            pos = m.end()
        return re.compile(out + re.escape(self.path[pos:]).rstrip("/") + "/?$")


class MiddlewareConfig(BaseModel):
    """The whole mapping configuration of one application."""

    model_config = ConfigDict(extra="forbid")

    source: str
    routes: list[RouteMapping] = Field(min_length=1)
    redact: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACT))
    topic: str = topics.INGEST
    queue_size: int = Field(default=10_000, ge=1)
    when_full: Literal["drop", "block"] = "drop"
    block_timeout: float = Field(default=5.0, gt=0)
    max_body: int = Field(default=1024 * 1024, ge=0, description="bytes of request/response kept")
    validate_schemas: bool = True

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError("source must be a non-empty URI-reference without white space")
        return v


def parse_config(doc: Any, *, origin: str = "<config>") -> MiddlewareConfig:
    """Validate a mapping document; :class:`MappingError` names the field and says why."""
    try:
        config = MiddlewareConfig.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise MappingError(f"{origin}: {field}: {err['msg']}", field=field, source=origin) from None
    for i, route in enumerate(config.routes):
        for name, value in (("subject", route.subject), ("data", route.data)):
            for text in _strings(value):
                try:
                    check(text)
                except TemplateError as exc:
                    raise MappingError(
                        f"{origin}: routes.{i}.{name}: {exc.message}",
                        field=f"routes.{i}.{name}",
                        source=origin,
                    ) from None
    return config


def load_config(path: str | Path) -> MiddlewareConfig:
    """Read a YAML mapping file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{p}: cannot read: {exc}", field="<file>", source=str(p)) from None
    return parse_config(doc, origin=str(p))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@dataclass(frozen=True, slots=True)
class Capture:
    """What the request path hands to the background worker (cheap to build)."""

    route: int
    path_params: dict[str, str]
    query: str
    request_body: bytes
    response_body: bytes
    status: int


Compiled = Callable[[Mapping[str, Any]], Any]


def compile_value(value: Any, path: str) -> Compiled:
    """A function of the context rendering ``value``. A string that is exactly ``{{ a.b.c }}`` is a
    plain lookup (native type, no template engine: the common case, and ~1000x cheaper); other
    strings go through the sandbox (:func:`whale.rules.templating.render_value`)."""
    if isinstance(value, str):
        simple = _SIMPLE.match(value)
        if simple is None:
            return lambda ctx: render_value(value, ctx, path=path)
        steps = simple.group(1).split(".")

        def lookup(ctx: Mapping[str, Any]) -> Any:
            cur: Any = ctx
            for i, step in enumerate(steps):
                if not isinstance(cur, Mapping) or step not in cur:
                    where = ".".join(steps[: i + 1])
                    raise TemplateError(f"{path}: {where!r} is undefined", template=value, field=path)
                cur = cur[step]
            return cur

        return lookup
    if isinstance(value, Mapping):
        parts = {k: compile_value(v, f"{path}.{k}") for k, v in value.items()}
        return lambda ctx: {k: f(ctx) for k, f in parts.items()}
    if isinstance(value, list):
        items = [compile_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return lambda ctx: [f(ctx) for f in items]
    return lambda ctx: value


class Router:
    """Matches (method, path) against the configured routes, first match wins."""

    def __init__(self, config: MiddlewareConfig) -> None:
        self.config = config
        self._routes = [(r.method, r.pattern()) for r in config.routes]
        self._words = tuple(w.lower() for w in config.redact)
        self._subjects = [
            None if r.subject is None else compile_value(r.subject, "subject") for r in config.routes
        ]
        self._data = [None if r.data is None else compile_value(r.data, "data") for r in config.routes]

    def match(self, method: str, path: str) -> tuple[int, dict[str, str]] | None:
        for i, (m, pattern) in enumerate(self._routes):
            if m == method:
                found = pattern.match(path)
                if found:
                    return i, found.groupdict()
        return None

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with every value under a secret-looking key replaced."""
        if isinstance(value, dict):
            return {
                k: REDACTED if any(w in str(k).lower() for w in self._words) else self.redact(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def build_event(self, capture: Capture) -> CloudEvent:
        """Render the event of a captured call; raises :class:`PayloadError` saying what failed."""
        route = self.config.routes[capture.route]
        ctx = {
            "method": route.method,
            "path": capture.path_params,
            "query": _query(capture.query),
            "request": self.redact(_json(capture.request_body)),
            "response": self.redact(_json(capture.response_body)),
            "status": capture.status,
        }
        try:
            make_subject, make_data = self._subjects[capture.route], self._data[capture.route]
            subject = make_subject(ctx) if make_subject is not None else None
            if make_data is None:
                data = {"path": ctx["path"], "request": ctx["request"], "response": ctx["response"]}
            else:
                data = self.redact(make_data(ctx))
        except TemplateError as exc:
            raise PayloadError(
                f"route {route.method} {route.path}: {exc.message}",
                [{"field": exc.field or "", "message": exc.message}],
            ) from None
        return CloudEvent.create(
            type=route.type,
            source=self.config.source,
            id=str(uuid.uuid4()),
            subject=None if subject is None else str(subject),
            data=data,
        )


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def _query(raw: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(raw, keep_blank_values=True))
