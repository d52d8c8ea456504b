"""What a rule refers to: its target in a pool's catalogue (and the params its ``params_schema``
allows) and the ``data`` fields of its event type's registered JSON Schema. Used by
:func:`whale.rules.model.validate_rule`, and by the stages that check params against a target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import jsonschema

from whale.rules import regex, templating
from whale.rules.matching import Condition, leaves
from whale.rules.paths import parse_path

if TYPE_CHECKING:
    from whale.rules.model import Lookup, Rule


def template_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in ``value`` (a rule's params) with where it is (``params.a[0]``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from template_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from template_strings(v, f"{path}[{i}]")


def is_template(text: Any) -> bool:
    """Whether ``text`` is a template (holds Jinja markup) rather than a plain value."""
    return isinstance(text, str) and ("{{" in text or "{%" in text or "{#" in text)


def find_target(catalog_doc: Mapping[str, Any], kind: str, name: str) -> Mapping[str, Any] | None:
    """The catalogue entry of an action or workflow, or None."""
    entries = catalog_doc.get("actions" if kind == "action" else "workflows") or []
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return entry
    return None


def check_target(rule: Rule, catalog: Lookup | None, problems: list[dict[str, str]]) -> None:
    """Problems of the rule's target in its pool's catalogue (when there is one): an unknown
    action or workflow, params its ``params_schema`` refuses."""
    if catalog is None:
        return
    record = catalog.get(rule.target.pool)
    if record is None or not isinstance(record.data, Mapping):
        rule._warnings.append(
            f"no catalogue published for pool {rule.target.pool!r} yet: target "
            f"{rule.target.kind} {rule.target.name!r} and its params were not checked"
        )
        return
    entry = find_target(record.data, rule.target.kind, rule.target.name)
    if entry is None:
        known = [
            str(e.get("name"))
            for e in record.data.get("actions" if rule.target.kind == "action" else "workflows") or []
            if isinstance(e, Mapping)
        ]
        problems.append(
            {
                "field": "target.name",
                "message": f"unknown {rule.target.kind} {rule.target.name!r} in pool {rule.target.pool!r}; "
                f"known: {', '.join(sorted(known)) or 'none'}",
            }
        )
        return
    schema = entry.get("params_schema")
    if isinstance(schema, Mapping) and schema:
        for problem in params_problems(rule.params, schema, templated=True):
            problems.append(problem)


def params_problems(params: Any, schema: Mapping[str, Any], *, templated: bool) -> list[dict[str, str]]:
    """Where ``params`` break ``schema``. With ``templated``, template strings are not judged
    (their value is only known when rendered); missing or unexpected keys still are."""
    try:
        validator = jsonschema.Draft202012Validator(schema)
        errors = list(validator.iter_errors(params))
    except (jsonschema.SchemaError, TypeError) as exc:
        return [{"field": "params", "message": f"the target's params_schema is unusable: {exc}"}]
    out = []
    for err in errors:
        if templated and is_template(err.instance):
            continue
        where = "params" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append({"field": where, "message": f"does not fit the target's params_schema: {err.message}"})
    return out


def check_fields(rule: Rule, condition: Condition, schemas: Lookup, problems: list[dict[str, str]]) -> None:
    """Problems of the ``data`` fields the rule reads (match, templates) that its event types'
    registered schemas cannot contain."""
    types = condition.required_equalities().get(("type",))
    if not types:
        return
    registered = []
    for _, name in types:
        record = schemas.get(str(name))
        if record is None or not isinstance(record.data, Mapping) or not record.data.get("versions"):
            return  # an unregistered type could contain anything
        registered.append(record.data["versions"][-1].get("schema") or {})
    paths = [
        ("match" if leaf.where == "(root)" else f"match.{leaf.where}", leaf.field)
        for leaf in leaves(condition)
    ]
    templates = list(template_strings(rule.params, "params"))
    if rule.throttle is not None:
        templates.append(("throttle.key", rule.throttle.key))
    for path, source in templates:
        if is_template(source):
            with contextlib.suppress(Exception):  # syntax errors are reported by the template check
                paths.extend((path, name) for name in templating.referenced_names(source))
    for where, name in paths:
        parts = parse_path(name)
        if parts[:1] != ("data",) or len(parts) < 2:
            continue
        if not any(schema_allows(schema, parts[1:]) for schema in registered):
            kinds = ", ".join(sorted(str(v) for _, v in types))
            problems.append(
                {
                    "field": where,
                    "message": f"field {name!r} cannot occur in events of type {kinds} (registered schema)",
                }
            )


def schema_allows(schema: Any, path: Iterable[str | int]) -> bool:
    """False only when a JSON Schema certainly cannot contain ``path`` (unknown means allowed)."""
    parts = list(path)
    if not parts or schema is True or not isinstance(schema, Mapping):
        return schema is not False
    if "$ref" in schema:
        return True
    for combo in ("anyOf", "oneOf"):
        if isinstance(schema.get(combo), list):
            return any(schema_allows(s, parts) for s in schema[combo])
    if isinstance(schema.get("allOf"), list) and not all(schema_allows(s, parts) for s in schema["allOf"]):
        return False
    head, rest = parts[0], parts[1:]
    kinds = schema.get("type")
    kind_set = set(kinds) if isinstance(kinds, list) else ({kinds} if isinstance(kinds, str) else None)
    if isinstance(head, int):
        if kind_set is not None and "array" not in kind_set:
            return False
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and head < len(prefix):
            return schema_allows(prefix[head], rest)
        return schema_allows(schema.get("items", True), rest)
    if kind_set is not None and "object" not in kind_set:
        return False
    props = schema.get("properties")
    if isinstance(props, Mapping) and head in props:
        return schema_allows(props[head], rest)
    patterns = schema.get("patternProperties")
    if isinstance(patterns, Mapping):
        for pattern, sub in patterns.items():
            try:
                if regex.compile(pattern).search(head):
                    return schema_allows(sub, rest)
            except regex.RegexError:
                return True
    return schema_allows(schema.get("additionalProperties", True), rest)
