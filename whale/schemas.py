"""The one check of a user event against its type's registered contract.

Every producer of user events goes through :class:`SchemaCheck` before writing to ``whale.ingest``:
the event center's ingest API, the adapters (webhooks, Alertmanager, pollers, the API middleware).
The contracts live on the compacted ``whale.schemas`` topic (owned by the event center's registry):
key = event type, a ``whale.schema.registered`` record whose data is ``{"type", "versions":
[{"version", "schema", "registered_at"}]}`` with the latest version last.

The check, in order:

1. the type must be registered (a problem on ``type`` otherwise);
2. a ``dataschema`` naming a version of the type (``…/schemas/{type}/versions/{n}``) selects that
   version, and an unknown one is a problem on ``dataschema``; otherwise the latest version applies;
3. JSON data is validated against that version (JSON Schema draft 2020-12, ``format`` checked with
   ``jsonschema``'s format checker); non-JSON data needs a schema that accepts it
   (:func:`media_problems`).

Each problem names the field (``data.host``, ``data.items[0]``), the JSON pointer into ``data`` for
data problems, and why. One compiled validator is kept per (type, version).

Valid data, the common case, is confirmed by a compiled ``jsonschema-rs`` validator (an order of
magnitude cheaper than ``jsonschema``); only when it finds a problem does ``jsonschema`` run to name
the problems, so the verdict and the problem list stay ``jsonschema``'s. The fast path is used only
for schemas where ``jsonschema-rs`` is never more lenient than ``jsonschema`` (:func:`fast_validator`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema_rs
from jsonschema import Draft202012Validator

from whale.binding import is_json_content
from whale.cloudevent import CloudEvent
from whale.errors import Problem

RECORD_TYPE = "whale.schema.registered"
"""The type of the records on ``whale.schemas``."""
MAX_PROBLEMS = 50
_VERSION_URL = re.compile(r"/schemas/(?P<type>[^/]+)/versions/(?P<version>\d+)$")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
FAST_UNSAFE = frozenset(
    {"pattern", "patternProperties", "multipleOf", "uniqueItems", "$dynamicRef", "$recursiveRef"}
)
"""Keywords where ``jsonschema-rs`` may accept what ``jsonschema`` refuses (ECMA-262 against Python
regular expressions, float arithmetic, equality of 1 and 1.0): a schema using one (or a property
named like one) is checked by ``jsonschema`` alone."""


class SchemaSource(Protocol):
    """Where the registered contracts are read (a compacted view of ``whale.schemas``)."""

    def get(self, key: str) -> CloudEvent | None: ...


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One registered version of an event type's JSON Schema."""

    type: str
    version: int
    schema: Any
    registered_at: str

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "schema": self.schema, "registered_at": self.registered_at}


def versions_of(type_: str, record: CloudEvent | None) -> list[SchemaVersion]:
    """The versions a ``whale.schema.registered`` record holds, oldest first."""
    if record is None or not isinstance(record.data, dict):
        return []
    out = []
    for item in record.data.get("versions") or []:
        if isinstance(item, dict) and isinstance(item.get("version"), int):
            out.append(
                SchemaVersion(type_, item["version"], item.get("schema"), str(item.get("registered_at")))
            )
    return out


def schema_url(base_url: str, type_: str, version: int) -> str:
    """The URL of one schema version (an event's ``dataschema`` may name it)."""
    return f"{base_url.rstrip('/')}/schemas/{type_}/versions/{version}"


def data_field(path: Any) -> str:
    """``data.a[0].b`` for the path ``["a", 0, "b"]`` inside ``data``."""
    out = "data"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def fast_validator(schema: Any) -> Callable[[Any], bool] | None:
    """A compiled ``jsonschema-rs`` check (``format`` checked) whose True is trusted, or None when
    the schema uses what it may judge more leniently than ``jsonschema``: a keyword of
    :data:`FAST_UNSAFE`, ``format: regex``, another dialect, or a ``$ref`` outside the schema (never
    fetched). False only means ``jsonschema`` must decide."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in FAST_UNSAFE or (key == "format" and value == "regex"):
                    return None
                if key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
                    return None
                if key == "$schema" and value not in (DIALECT, DIALECT + "#"):
                    return None
                stack.append(value)
    try:
        compiled = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    except Exception:  # whatever it cannot compile, jsonschema checks alone
        return None

    def valid(data: Any) -> bool:
        try:
            return bool(compiled.is_valid(data))
        except Exception:  # data it cannot represent (bytes, non-str keys): jsonschema decides
            return False

    return valid


def data_problems(validator: Draft202012Validator, data: Any) -> list[Problem]:
    """Every schema violation of ``data`` (at most :data:`MAX_PROBLEMS`): the field, the JSON
    pointer into data and a readable message."""
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)
        problems.append(
            {"field": data_field(error.absolute_path), "pointer": pointer or "/", "message": error.message}
        )
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems


def media_problems(schema: Any, content_type: str) -> list[Problem]:
    """Non-JSON data (text, XML, bytes) is accepted when the type's schema accepts anything (``{}``
    or ``true``) or names its media type in a top-level ``contentMediaType`` (``text/*`` and ``*/*``
    wildcards allowed). The JSON Schema itself applies to JSON data only."""
    if schema is True or schema == {}:
        return []
    base = content_type.split(";", 1)[0].strip().lower()
    declared = schema.get("contentMediaType") if isinstance(schema, dict) else None
    if isinstance(declared, str):
        wanted = declared.split(";", 1)[0].strip().lower()
        if wanted in (base, "*/*") or (wanted.endswith("/*") and base.startswith(wanted[:-1])):
            return []
    return [
        {
            "field": "datacontenttype",
            "message": f"the type's schema takes JSON data, not {base}; declare it in the schema's "
            "top-level contentMediaType to accept it",
        }
    ]


def describe(problems: list[Problem], limit: int = 5) -> str:
    """The problems in one line: ``data.host: 'host' is a required property; …``."""
    return "; ".join(f"{p['field']}: {p['message']}" for p in problems[:limit])


class SchemaCheck:
    """Checks user events against the contracts ``source`` holds (see the module docstring).

    ``base_url`` is the event center's public URL: when given, only a ``dataschema`` under it selects
    a version (others are foreign references and leave the latest version in force); without it, any
    ``dataschema`` ending in ``/schemas/{type}/versions/{n}`` for the event's own type does.
    """

    def __init__(self, source: SchemaSource, *, base_url: str | None = None) -> None:
        self._source = source
        self._base_url = base_url.rstrip("/") if base_url is not None else None
        self._validators: dict[tuple[str, int], Draft202012Validator] = {}
        self._fast: dict[tuple[str, int], Callable[[Any], bool] | None] = {}
        self._lock = threading.Lock()

    def versions(self, type_: str) -> list[SchemaVersion]:
        return versions_of(type_, self._source.get(type_))

    def validator(self, item: SchemaVersion) -> Draft202012Validator:
        """The compiled validator of one version (compiled once, ``format`` checked)."""
        key = (item.type, item.version)
        with self._lock:
            found = self._validators.get(key)
            if found is None:
                found = Draft202012Validator(item.schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
                self._validators[key] = found
        return found

    def fast(self, item: SchemaVersion) -> Callable[[Any], bool] | None:
        """The fast check of one version (compiled once; None when ``jsonschema`` checks alone)."""
        key = (item.type, item.version)
        with self._lock:
            if key not in self._fast:
                self._fast[key] = fast_validator(item.schema)
            return self._fast[key]

    def problems(self, event: CloudEvent) -> list[Problem]:
        """Why ``event`` breaks its type's contract (empty when it keeps it)."""
        versions = self.versions(event.type)
        if not versions:
            return [
                {
                    "field": "type",
                    "message": f"event type {event.type!r} is not registered (PUT /schemas/{{type}})",
                }
            ]
        chosen = self._chosen(event, versions)
        if chosen is None:
            return [
                {
                    "field": "dataschema",
                    "message": f"{event.dataschema} is not a registered version of {event.type}",
                }
            ]
        data = event.data
        if not is_json_content(event.datacontenttype) and isinstance(data, bytes | str):
            return media_problems(chosen.schema, event.datacontenttype or "")
        if isinstance(data, bytes):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                if event.datacontenttype is None:  # data_base64 without a content type: octet-stream
                    return media_problems(chosen.schema, "application/octet-stream")
                return [{"field": "data", "pointer": "/", "message": "data is declared JSON but is not JSON"}]
        fast = self.fast(chosen)
        if fast is not None and fast(data):
            return []
        return data_problems(self.validator(chosen), data)

    def _chosen(self, event: CloudEvent, versions: list[SchemaVersion]) -> SchemaVersion | None:
        """The version ``dataschema`` names, the latest when it names none, None for an unknown one."""
        url = event.dataschema
        if url is None:
            return versions[-1]
        if self._base_url is not None:
            if not url.startswith(self._base_url + "/schemas/"):
                return versions[-1]
            wanted = [v for v in versions if schema_url(self._base_url, event.type, v.version) == url]
            return wanted[0] if wanted else None
        found = _VERSION_URL.search(url)
        if found is None or found["type"] != event.type:
            return versions[-1]
        number = int(found["version"])
        return next((v for v in versions if v.version == number), None)
