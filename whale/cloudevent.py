"""The CloudEvents 1.0 model (pydantic v2) with strict validation and precise errors.

Extensions are kept in ``extensions``; in the JSON (structured) format they sit at top level, as the
spec says. Extension names are lower-case ASCII letters and digits (the spec says SHOULD NOT exceed 20
characters: longer names are accepted, :func:`warnings` lists them); integer values fit 32 bits.

Edge rules (one bad event must never break another reader): every string is valid Unicode (no
unpaired surrogate), ``source``, ``subject``, ``id``, ``type`` and extension values hold no control
character, ``source`` is a URI-reference, ``data`` is nested at most :data:`MAX_NESTING` levels (a
sender's data :data:`MAX_DEPTH`, see :func:`edge_problems`), and
``time`` is strict RFC 3339 whose text is kept as the sender wrote it (:class:`EventTime`).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from whale.errors import EventError
from whale.event_data import MAX_DEPTH, data_problem, depth_within, text_problem

SPEC_VERSION = "1.0"
CONTEXT_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
RESERVED = CONTEXT_ATTRIBUTES | {"data", "data_base64"}
EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")
EXTENSION_NAME_ADVISED = 20
INT32 = (-(2**31), 2**31 - 1)


def _extension_value(value: str | int | bool) -> str | int | bool:
    if isinstance(value, str):
        return _checked_text(value, "an extension value")
    if not isinstance(value, bool) and not INT32[0] <= value <= INT32[1]:
        raise ValueError("an integer extension must fit 32 bits (CloudEvents Integer)")
    return value


ExtensionValue = Annotated[str | int | bool, AfterValidator(_extension_value)]

# RFC 3986 URI-reference characters (non-ASCII letters allowed too, as in IRIs); "%" starts an escape
_URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}|[^\x00-\x7f])*$")
URI_REFERENCE = _URI_REFERENCE  # what a source must match (also checked by whale.light_event)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt])(?:[01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(?:\.\d+)?(?:([Zz])|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)


def _require_text(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} must be a non-empty string")
    return value


def _checked_text(value: str, what: str, *, controls: bool = True) -> str:
    problem = text_problem(value, controls=controls)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value


class EventTime(datetime):
    """A ``datetime`` that remembers the RFC 3339 text it was read from (``text``): sub-microsecond
    digits, the offset and a leap second ``:60`` are written back exactly as the sender wrote them."""

    text: str | None = None


def _upper_t_z(text: str, found: re.Match[str]) -> str:
    kept = text[:10] + "T" + text[11:]
    return kept[:-1] + "Z" if found.group(3) else kept


def parse_time(text: str) -> EventTime:
    """Strict RFC 3339 (``T``, seconds, ``.`` fractions, ``Z`` or ``+hh:mm``). The text is kept as
    sent, with ``T`` and ``Z`` upper-cased (Go and Java parsers need that) and a leap second written
    ``:59.999999999`` (no SDK parses ``:60``). Raises ValueError naming the rule broken."""
    found = _RFC3339.match(text)
    if found is None:
        raise ValueError(
            "time must be an RFC 3339 timestamp like 2018-04-05T17:31:00Z "
            "(seconds required, '.' fractions, offset Z or +hh:mm)"
        )
    kept = text if found.group(1) == "T" and found.group(3) != "z" else _upper_t_z(text, found)
    if found.group(2) == "60":  # a leap second: the last representable instant of its minute
        kept = kept[:17] + "59.999999999" + ("Z" if found.group(3) else kept[-6:])
    try:
        value = EventTime.fromisoformat(kept)  # C speed; any number of fraction digits
    except ValueError as exc:
        raise ValueError(f"time is not a valid date and time: {exc}") from None
    value.text = kept
    return value


def edge_problems(event: CloudEvent) -> list[dict[str, str]]:
    """What a sender's event must not do beyond the model's rules (HTTP ingest and adapters)."""
    if event.data is None or isinstance(event.data, bytes) or depth_within(event.data, MAX_DEPTH):
        return []
    return [{"field": "data", "message": f"data is nested deeper than {MAX_DEPTH} levels"}]


def warnings(event: CloudEvent) -> list[dict[str, str]]:
    """What the spec advises against but allows (the ingest answer lists them)."""
    return [
        {"field": name, "message": f"extension names SHOULD NOT exceed {EXTENSION_NAME_ADVISED} characters"}
        for name in event.extensions
        if len(name) > EXTENSION_NAME_ADVISED
    ]


class CloudEvent(BaseModel):
    """One CloudEvent. ``data`` is any JSON value, or ``bytes`` for binary payloads."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=False)

    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: datetime | None = None
    data: Any = None
    extensions: dict[str, ExtensionValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _checked_text(_require_text(v, "id"), "id")

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return _checked_text(_require_text(v, "type"), "type")

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str | None) -> str | None:
        return None if v is None else _checked_text(v, "subject")

    @field_validator("datacontenttype")
    @classmethod
    def _datacontenttype(cls, v: str | None) -> str | None:
        return None if v is None else _checked_text(v, "datacontenttype")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        _checked_text(_require_text(v, "source"), "source")
        if not _URI_REFERENCE.match(v):
            raise ValueError(
                'source must be a URI-reference (RFC 3986: no space, <, >, ", {, }, |, \\, ^ or `)'
            )
        return v

    @field_validator("data")
    @classmethod
    def _data(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, bytes):
            problem = data_problem(v)
            if problem:
                raise ValueError(f"data{problem[0] if problem[0] != '/' else ''}: {problem[1]}")
        return v

    @field_validator("specversion")
    @classmethod
    def _specversion(cls, v: str) -> str:
        if v != SPEC_VERSION:
            raise ValueError(f"specversion must be {SPEC_VERSION!r}, got {v!r}")
        return v

    @field_validator("dataschema")
    @classmethod
    def _dataschema(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c.isspace() for c in v) or ":" not in v):
            raise ValueError("dataschema must be an absolute URI")
        return v

    @field_validator("time", mode="plain")
    @classmethod
    def _time(cls, v: Any) -> datetime | None:
        if v is None:
            return None
        if isinstance(v, str):
            return parse_time(v)
        if not isinstance(v, datetime):
            raise ValueError("time must be an RFC 3339 timestamp string")
        if v.tzinfo is None:
            raise ValueError("time must be an RFC 3339 timestamp with a time-zone offset")
        return v

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, v: dict[str, ExtensionValue]) -> dict[str, ExtensionValue]:
        for name in v:
            if name in RESERVED:
                raise ValueError(f"extension {name!r} collides with a context attribute")
            if not EXTENSION_NAME.match(name):
                raise ValueError(f"extension name {name!r} must be lower-case ASCII letters or digits")
        return v

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def create(cls, *, type: str, source: str, data: Any = None, **attributes: Any) -> CloudEvent:
        """A new event with a fresh UUID id and the current UTC time; extra keywords are
        context attributes when they are one, else extensions."""
        ext = dict(attributes.pop("extensions", {}) or {})
        for name in list(attributes):
            if name not in CONTEXT_ATTRIBUTES:
                ext[name] = attributes.pop(name)
        if attributes.get("subject") == "":
            del attributes["subject"]  # an empty subject is no subject (SDKs refuse "")
        attributes.setdefault("id", str(uuid.uuid4()))
        attributes.setdefault("time", datetime.now(UTC))
        if data is not None and not isinstance(data, bytes):
            attributes.setdefault("datacontenttype", "application/json")
        return validate_event({**attributes, "type": type, "source": source, "data": data, "extensions": ext})

    def get(self, name: str) -> Any:
        """A context attribute or extension by name (None when absent)."""
        if name in CONTEXT_ATTRIBUTES:
            return getattr(self, name)
        return self.extensions.get(name)

    @property
    def partition_key(self) -> str | None:
        """Kafka key: the ``partitionkey`` extension, else the subject, else none."""
        key = self.extensions.get("partitionkey")
        if key is not None:
            return str(key)
        return self.subject

    def time_text(self) -> str | None:
        return format_time(self.time) if self.time else None

    # ------------------------------------------------------------------ structured JSON form
    def to_structured(self) -> dict[str, Any]:
        """The JSON (structured-mode) form: attributes and extensions at top level."""
        out: dict[str, Any] = {"specversion": self.specversion, "id": self.id, "source": self.source}
        out["type"] = self.type
        for name in ("datacontenttype", "dataschema", "subject"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.time is not None:
            out["time"] = format_time(self.time)
        out.update(self.extensions)
        if isinstance(self.data, bytes):
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        elif self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def from_structured(cls, doc: Any) -> CloudEvent:
        """Parse the JSON (structured-mode) form; raises :class:`EventError` listing every problem."""
        if not isinstance(doc, dict):
            raise EventError(
                "a structured CloudEvent must be a JSON object", [{"field": "", "message": "not an object"}]
            )
        attrs: dict[str, Any] = {}
        ext: dict[str, Any] = {}
        problems: list[dict[str, str]] = []
        for name, value in doc.items():
            if name == "data_base64":
                try:
                    attrs["data"] = base64.b64decode(value, validate=True)
                except (ValueError, TypeError):
                    problems.append({"field": "data_base64", "message": "not valid base64"})
            elif name in CONTEXT_ATTRIBUTES or name == "data":
                attrs[name] = value
            else:
                if not isinstance(value, str | int | bool):
                    problems.append(
                        {"field": name, "message": "extension values must be string, integer or boolean"}
                    )
                ext[name] = value
        if "specversion" not in doc:
            problems.append({"field": "specversion", "message": "required attribute is missing"})
        if "data" in doc and "data_base64" in doc:
            problems.append(
                {"field": "data_base64", "message": "data and data_base64 are mutually exclusive"}
            )
        if problems:
            raise EventError(
                "invalid CloudEvent: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems),
                problems,
            )
        return validate_event({**attrs, "extensions": ext})

    def to_json(self) -> bytes:
        return json.dumps(self.to_structured(), separators=(",", ":"), default=str).encode()


def format_time(value: datetime) -> str:
    """RFC 3339 with a ``Z`` for UTC; an :class:`EventTime` keeps the sender's text."""
    kept = getattr(value, "text", None)
    if kept is not None:
        return str(kept)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def validate_event(fields: dict[str, Any]) -> CloudEvent:
    """Build a :class:`CloudEvent`, turning pydantic errors into an :class:`EventError` whose
    ``problems`` name each attribute and say why."""
    for name in ("id", "source", "type", "specversion", "subject", "datacontenttype", "dataschema"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise EventError(
                f"invalid CloudEvent: {name}: must be a string",
                [{"field": name, "message": "must be a string"}],
                field=name,
            )
    try:
        return CloudEvent.model_validate(fields)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise EventError(f"invalid CloudEvent: {text}", problems, field=problems[0]["field"]) from None


def _problem(err: Any) -> dict[str, str]:
    loc = [str(part) for part in err.get("loc", ())]
    field = loc[1] if loc[:1] == ["extensions"] and len(loc) > 1 else ".".join(loc)
    message = str(err.get("msg", "invalid"))
    if err.get("type") == "missing":
        message = "required attribute is missing"
    return {"field": field, "message": message.removeprefix("Value error, ")}
