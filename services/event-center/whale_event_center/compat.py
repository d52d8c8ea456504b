"""Backward-compatibility check between two versions of an event type's JSON Schema.

A new version is compatible when every event valid under the old version is still valid under the
new one, and everything consumers could rely on stays guaranteed. The rules (see the README):

1. no new required property (old events lack it); new optional properties are fine;
2. no removed required property (consumers rely on it): it must stay declared and required;
3. no narrowed ``type`` (``integer`` -> ``number`` widens; the reverse narrows);
4. no narrowed ``enum`` / ``const`` (removed values, or a new enum/const where there was none);
5. no tighter bound: ``minimum``/``exclusiveMinimum``/``minLength``/``minItems``/``minProperties``
   up, ``maximum``/``exclusiveMaximum``/``maxLength``/``maxItems``/``maxProperties`` down, a new or
   changed ``pattern``/``format``, ``uniqueItems`` turned on, ``additionalProperties`` closed;
6. the rules apply recursively to ``properties``, ``items``, ``additionalProperties``,
   ``prefixItems`` and ``$defs``; a changed combinator (``allOf``/``anyOf``/``oneOf``/``not``/
   ``if``/``then``/``else``/``$ref``) cannot be proven compatible and is reported as a break.

``PUT /schemas/{type}?force=true`` registers an incompatible version anyway.
"""

from __future__ import annotations

from typing import Any

Break = dict[str, str]
JSON_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")
OPAQUE = (
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "propertyNames",
    "contains",
    "multipleOf",
)


def breaks(old: Any, new: Any) -> list[Break]:
    """Every way ``new`` breaks backward compatibility with ``old`` (empty: compatible)."""
    out: list[Break] = []
    _compare(old, new, "", out)
    return out


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _add(out: list[Break], path: str, rule: str, message: str) -> None:
    out.append({"field": path or "/", "rule": rule, "message": message})


def _compare(old: Any, new: Any, path: str, out: list[Break]) -> None:
    if old is False or new is True or old == new:
        return
    if new is False:
        _add(out, path, "narrowed", "the new schema rejects everything here")
        return
    if old is True:
        old = {}
    if not isinstance(old, dict) or not isinstance(new, dict):
        return
    _compare_types(old, new, path, out)
    _compare_values(old, new, path, out)
    _compare_bounds(old, new, path, out)
    for keyword in OPAQUE:
        if keyword in new and old.get(keyword) != new.get(keyword):
            _add(out, path, "opaque", f"'{keyword}' changed; compatibility cannot be proven (use force)")
    _compare_objects(old, new, path, out)
    _compare_arrays(old, new, path, out)
    for name, sub in (old.get("$defs") or {}).items():
        new_defs = new.get("$defs") or {}
        if name not in new_defs:
            _add(out, f"{path}/$defs/{name}", "removed", f"definition '{name}' was removed")
        else:
            _compare(sub, new_defs[name], f"{path}/$defs/{name}", out)


def _compare_types(old: dict[str, Any], new: dict[str, Any], path: str, out: list[Break]) -> None:
    old_types, new_types = _types(old), _types(new)
    if new_types is None:
        return
    if old_types is None:
        _add(out, path, "narrowed_type", f"type restricted to {sorted(new_types)} (was any type)")
        return
    widened = set(new_types) | ({"integer"} if "number" in new_types else set())
    lost = old_types - widened
    if lost:
        _add(out, path, "narrowed_type", f"type no longer allows {sorted(lost)}")


def _compare_values(old: dict[str, Any], new: dict[str, Any], path: str, out: list[Break]) -> None:
    if "enum" in new:
        if "enum" not in old:
            if "const" not in old or old["const"] not in new["enum"]:
                _add(out, path, "narrowed_enum", "an enum was added where any value was allowed")
        else:
            removed = [v for v in old["enum"] if v not in new["enum"]]
            if removed:
                _add(out, path, "narrowed_enum", f"enum no longer allows {removed}")
    same_as_enum = "enum" in old and old["enum"] == [new.get("const")]
    if "const" in new and old.get("const") != new["const"] and not same_as_enum:
        _add(out, path, "narrowed_enum", f"const {new['const']!r} added or changed")
    for keyword in ("pattern", "format"):
        if keyword in new and old.get(keyword) != new[keyword]:
            _add(out, path, "narrowed_" + keyword, f"{keyword} {new[keyword]!r} added or changed")
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        _add(out, path, "narrowed_bound", "uniqueItems turned on")


def _compare_bounds(old: dict[str, Any], new: dict[str, Any], path: str, out: list[Break]) -> None:
    for keyword in LOWER_BOUNDS:
        if keyword in new and (keyword not in old or _gt(new[keyword], old[keyword])):
            _add(
                out,
                path,
                "narrowed_bound",
                f"{keyword} raised to {new[keyword]!r} (was {old.get(keyword)!r})",
            )
    for keyword in UPPER_BOUNDS:
        if keyword in new and (keyword not in old or _gt(old[keyword], new[keyword])):
            _add(
                out,
                path,
                "narrowed_bound",
                f"{keyword} lowered to {new[keyword]!r} (was {old.get(keyword)!r})",
            )


def _gt(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return bool(a != b)


def _compare_objects(old: dict[str, Any], new: dict[str, Any], path: str, out: list[Break]) -> None:
    old_required, new_required = set(old.get("required") or []), set(new.get("required") or [])
    old_props, new_props = old.get("properties") or {}, new.get("properties") or {}
    for name in sorted(new_required - old_required):
        _add(out, f"{path}/properties/{name}", "new_required", f"new required property '{name}'")
    for name in sorted(old_required - new_required):
        _add(
            out,
            f"{path}/properties/{name}",
            "removed_required",
            f"required property '{name}' is no longer required",
        )
    for name in sorted(old_required & set(old_props) - set(new_props)):
        if name in new_required:
            _add(
                out,
                f"{path}/properties/{name}",
                "removed_required",
                f"required property '{name}' is no longer declared",
            )
    old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
    for name, sub in new_props.items():
        if name in old_props:  # a new optional property is allowed (rule 1 covers new required ones)
            _compare(old_props[name], sub, f"{path}/properties/{name}", out)
    if new_extra is not True and old_extra != new_extra:
        _compare(old_extra, new_extra, f"{path}/additionalProperties", out)
        if new_extra is False:
            return
    for name in sorted(set(old_props) - set(new_props)):
        if new_extra is not True and name not in old_required:
            _compare(old_props[name], new_extra, f"{path}/properties/{name}", out)


def _compare_arrays(old: dict[str, Any], new: dict[str, Any], path: str, out: list[Break]) -> None:
    if "items" in new:
        _compare(old.get("items", True), new["items"], f"{path}/items", out)
    old_prefix, new_prefix = old.get("prefixItems") or [], new.get("prefixItems") or []
    for index, sub in enumerate(new_prefix):
        before = old_prefix[index] if index < len(old_prefix) else old.get("items", True)
        _compare(before, sub, f"{path}/prefixItems/{index}", out)
