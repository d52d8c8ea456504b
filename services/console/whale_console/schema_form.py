"""A form built from a JSON schema's top-level properties, and the form's values read back.

An approval may declare a ``response_schema``; the console offers one field per property of simple
type (string, with ``enum`` a list to choose from; integer; number; boolean) named
``response.<property>``. A schema it cannot draw as fields (nested objects, arrays, no properties)
gets one JSON text area instead. Values are converted where they parse and sent as typed; anything
else is sent as written, so the API's own check names the field (``response.<property>``) and the
page shows its message beside it.

The same form serves a catalogued action's ``params_schema`` (``prefix="params."``, JSON box
``params_json``): the event center names its problems ``params.<property>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

PREFIX = "response."
JSON_FIELD = "response_json"
SIMPLE = ("string", "integer", "number", "boolean")
MISSING = re.compile(r"'([^']+)' is a required property$")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    title: str
    description: str = ""
    required: bool = False
    choices: tuple[str, ...] = field(default_factory=tuple)
    prefix: str = PREFIX

    @property
    def input_name(self) -> str:
        return self.prefix + self.name


def fields_of(schema: Any, prefix: str = PREFIX) -> list[Field] | None:
    """The fields of ``schema``; None when it is not an object of simple properties (use JSON)."""
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return None
    listed = schema.get("required")
    required: list[Any] = listed if isinstance(listed, list) else []
    found = []
    for name, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "string")
        if kind not in SIMPLE:
            return None
        enum = spec.get("enum")
        choices = tuple(str(c) for c in enum) if isinstance(enum, list) else ()
        found.append(
            Field(
                name=str(name),
                type=str(kind),
                title=str(spec.get("title") or name),
                description=str(spec.get("description") or ""),
                required=name in required,
                choices=choices,
                prefix=prefix,
            )
        )
    return found


def _typed(value: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # sent as written: the API names the field and why
    return value


def response_of(
    schema: Any, form: dict[str, str], prefix: str = PREFIX, json_field: str = JSON_FIELD
) -> tuple[Any, str | None]:
    """(the ``response`` to send, a problem with the JSON text area or None)."""
    if schema is None:
        return None, None
    fields = fields_of(schema, prefix)
    if fields is None:
        text = form.get(json_field, "").strip()
        if not text:
            return None, None
        try:
            return json.loads(text), None
        except ValueError as exc:
            return None, f"the response is not JSON: {exc}"
    response: dict[str, Any] = {}
    for f in fields:
        if f.type == "boolean":
            response[f.name] = form.get(f.input_name) in ("on", "true", "1")
            continue
        value = form.get(f.input_name, "").strip()
        if value:
            response[f.name] = _typed(value, f.type)
    return response, None


def problems_by_field(
    problems: list[dict[str, str]], prefix: str = PREFIX
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(message per form field name, the problems no field shows)."""
    shown: dict[str, str] = {}
    rest = []
    for p in problems:
        name = str(p.get("field", ""))
        missing = MISSING.search(str(p.get("message", "")))
        if name == prefix.rstrip(".") and missing:  # the schema's own place for a missing property
            name = prefix + missing.group(1)
        if name.startswith(prefix):
            shown[name] = str(p.get("message", ""))
        else:
            rest.append(p)
    return shown, rest
